using System.Numerics;
using System.Text.RegularExpressions;
using Workbook.Randomness;
using Workbook.Tests.Support;

namespace Workbook.Tests.Tasks;

public class RandomnessTests
{
    // Expected values below were produced by CPython 3.11's random module (an independent implementation).
    [Fact]
    public void PythonSeedingAndRawDrawsMatchCPython()
    {
        var r = new PythonRandom(0);
        Assert.Equal(new BigInteger[] { 3626764237, 1654615998, 3255389356 }, new[] { r.GetRandBits(32), r.GetRandBits(32), r.GetRandBits(32) });
        r = new PythonRandom(42);
        Assert.Equal(0.6394267984578837, r.Random());
        Assert.Equal(0.025010755222666936, r.Random());
        // A seed wider than 32 bits (init_by_array with several key words) and a draw wider than one word.
        r = new PythonRandom(BigInteger.Parse("123456789012345678901234567890"));
        Assert.Equal(new BigInteger(3124625047), r.GetRandBits(32));
        Assert.Equal(BigInteger.Parse("962173325377470149204"), r.GetRandBits(70));
        // Negative seeds use the absolute value.
        Assert.Equal(new BigInteger(2675342405), new PythonRandom(-5).GetRandBits(32));
    }

    [Fact]
    public void PythonChoiceRandintAndRandrangeMatchCPython()
    {
        var r = new PythonRandom(7);
        Assert.Equal(new long[] { 1, 0, 1, 0, 0, 0, 1, 0, 0, 0 }, Enumerable.Range(0, 10).Select(_ => r.RandInt(0, 1)));
        Assert.Equal(11, r.Choice(Enumerable.Range(0, 100).ToArray()));
        Assert.Equal(461423994714L, r.RandRange(0, 1_000_000_000_000L));
    }

    [Fact]
    public void PythonSampleUsesBothCPythonBranches()
    {
        var r = new PythonRandom(3);
        Assert.Equal(new[] { 3, 8, 2, 7 }, r.Sample(Enumerable.Range(0, 10).ToArray(), 4));             // pool branch (n ≤ 21)
        Assert.Equal(new[] { 77, 60, 80, 74, 8, 1, 107, 33, 70, 29, 24, 91, 69, 50, 81 }, r.Sample(Enumerable.Range(0, 111).ToArray(), 15)); // set branch
        Assert.Equal(new[] { 27, 4, 7, 20, 28, 16, 12, 0 }, r.Sample(Enumerable.Range(0, 30).ToArray(), 8));   // pool branch (k > 5: n ≤ 85)
        Assert.Equal(new[] { 171, 198, 16, 40, 194, 151, 10, 77 }, r.Sample(Enumerable.Range(0, 200).ToArray(), 8)); // set branch
        Assert.Throws<ArgumentException>(() => r.Sample(new[] { 1, 2 }, 3));
    }

    [Fact]
    public void PythonShuffleMatchesCPython()
    {
        var x = Enumerable.Range(0, 12).ToList();
        new PythonRandom(9).Shuffle(x);
        Assert.Equal(new[] { 8, 6, 3, 11, 0, 10, 1, 2, 4, 5, 9, 7 }, x);
    }

    /// <summary>Spec Appendix E: random.seed(42); random.shuffle(range(n)); first 200, for the three shuffled datasets.</summary>
    [Theory]
    [InlineData("Sports players", 249)]
    [InlineData("Tracr X-proportion", 1024)]
    [InlineData("Tracr Reverse", 243)]
    public void ShuffleWithSeed42ReproducesAppendixE(string heading, int n)
    {
        var expected = AppendixEList(heading);
        Assert.Equal(200, expected.Count);
        var x = Enumerable.Range(0, n).ToList();
        new PythonRandom(42).Shuffle(x);
        Assert.Equal(expected, x.Take(200));
    }

    static List<int> AppendixEList(string heading)
    {
        string spec = TestFiles.ReadPaperReference();
        int start = spec.IndexOf("## Appendix E", StringComparison.Ordinal);
        int at = spec.IndexOf(heading + " (n=", start, StringComparison.Ordinal);
        int open = spec.IndexOf('[', at), close = spec.IndexOf(']', open);
        return Regex.Matches(spec[open..close], @"\d+").Select(m => int.Parse(m.Value)).ToList();
    }

    // numpy's legacy RandomState: widely published values of np.random.seed(0) (rand and randint).
    [Fact]
    public void NumpyRandomStateMatchesPublishedValues()
    {
        var np = new NumpyRandomState(0);
        Assert.Equal(0.5488135039273248, np.RandomSample());
        Assert.Equal(0.7151893663724195, np.RandomSample());
        Assert.Equal(0.6027633760716439, np.RandomSample());
        np.Seed(0);
        Assert.Equal(new long[] { 5, 0, 3, 3, 7 }, Enumerable.Range(0, 5).Select(_ => np.RandInt(0, 10)));
    }

    [Fact]
    public void NumpyDrawsStayInRangeAndCoverIt()
    {
        var np = new NumpyRandomState(1);
        var seen = new HashSet<long>();
        for (int i = 0; i < 2000; i++)
        {
            long v = np.RandInt(3, 10);
            Assert.InRange(v, 3, 9);
            seen.Add(v);
        }
        Assert.Equal(7, seen.Count);
        var perm = np.Permutation(50);
        Assert.Equal(Enumerable.Range(0, 50), perm.OrderBy(v => v));
        var pick = np.ChoiceWithoutReplacement(Enumerable.Range(0, 20).ToArray(), 20);
        Assert.Equal(20, pick.Distinct().Count());
    }
}
