using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>The transformer reproduces HuggingFace's own logits on the reference checkpoints.</summary>
public class FixtureForwardTests
{
    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]
    public void UnpatchedLogitsMatchHuggingFace(string model)
    {
        var fixture = ScenarioFixture.Load($"{model}-scenarios.json");
        using var m = ModelLoader.Load(TestFiles.Fixture(model));
        using var _ = NewDisposeScope();
        using var __ = no_grad();
        var logits = m.Forward(TensorAssert.Tokens(fixture.Clean));
        TensorAssert.Close(fixture["unpatched"].Logits, logits, 1e-4, model);
    }

    [Fact]
    public void NeoXConfigIsReadFromEitherRopeSpelling()
    {
        var modern = HuggingFaceCheckpoint.ReadConfig(ConfigJson.Load(TestFiles.Fixture("tiny-neox/config.json")), "m");
        var legacyJson = File.ReadAllText(TestFiles.Fixture("tiny-neox/config.json"))
            .Replace("\"rope_parameters\"", "\"unused\"")
            .Replace("\"use_parallel_residual\"", "\"rotary_pct\": 0.25, \"rotary_emb_base\": 10000, \"use_parallel_residual\"");
        var legacy = HuggingFaceCheckpoint.ReadConfig(ConfigJson.Parse(legacyJson), "m");
        Assert.Equal(4, modern.RotaryDim); // 16-dim heads, 25 %
        Assert.Equal(modern.RotaryDim, legacy.RotaryDim);
        Assert.Equal(modern.RotaryBase, legacy.RotaryBase);
        Assert.True(modern.ParallelAttnMlp);
        Assert.False(modern.TiedEmbeddings);
    }
}
