using Workbook.Checkpoints;
using Workbook.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>Half-precision inference: runs, and stays within a stated distance of the float32 (HuggingFace) logits.</summary>
public class DTypeTests
{
    readonly ITestOutputHelper _output;
    public DTypeTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData("tiny-gpt2", ScalarType.Float16)]
    [InlineData("tiny-gpt2", ScalarType.BFloat16)]
    [InlineData("tiny-neox", ScalarType.Float16)]
    [InlineData("tiny-neox", ScalarType.BFloat16)]
    public void HalfPrecisionLogitsStayCloseToFloat32(string model, ScalarType dtype)
    {
        var fixture = ScenarioFixture.Load($"{model}-scenarios.json");
        using var m = ModelLoader.Load(TestFiles.Fixture(model), new LoadOptions { DType = dtype });
        Assert.Equal(dtype, m.embed.W_E.dtype);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var logits = m.Forward(TensorAssert.Tokens(fixture.Clean));
        Assert.Equal(dtype, logits.dtype);
        var expected = tensor(fixture["unpatched"].Logits).reshape(logits.shape);
        double diff = TensorAssert.MaxAbsDiff(expected, logits);
        double range = expected.abs().max().item<float>();
        _output.WriteLine($"{model} {dtype}: max |logit - float32 logit| = {diff:G3} (logits up to {range:G3})");
        // Bounds from the formats' precision (float16: 11 significant bits, bfloat16: 8) on logits of magnitude ~10.
        Assert.InRange(diff, 1e-6, dtype == ScalarType.Float16 ? 0.05 : 0.5);
    }
}
