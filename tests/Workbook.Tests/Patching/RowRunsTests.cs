using Workbook.Patching;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>Summing rows through runs of narrow views gives the sum of the gathered rows.</summary>
public class RowRunsTests
{
    [Theory]
    [InlineData(new long[] { 0 })]
    [InlineData(new long[] { 3, 4, 5 })]
    [InlineData(new long[] { 0, 2, 3, 7, 8, 9, 11 })]
    [InlineData(new long[] { 1, 5, 9 })]
    public void SumEqualsTheSumOfTheGatheredRows(long[] rows)
    {
        using var scope = NewDisposeScope();
        var t = randn(new long[] { 12, 3, 4 }, generator: new Generator(5));
        var expected = t.index_select(0, tensor(rows)).sum(dim: 0);
        var runs = RowRuns.Of(rows);
        Assert.Equal(rows.Zip(rows.Skip(1)).Count(p => p.Second != p.First + 1) + 1, runs.Count);
        Workbook.Tests.Support.TensorAssert.Close(expected, runs.Sum(t), 1e-6);
    }

    [Fact]
    public void UnsortedOrRepeatedRowsAreRefused()
    {
        Assert.Throws<ArgumentException>(() => RowRuns.Of(new long[] { 2, 1 }));
        Assert.Throws<ArgumentException>(() => RowRuns.Of(new long[] { 2, 2 }));
    }
}
