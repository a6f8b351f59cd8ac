using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>Saving a GPT-2 model as a HuggingFace folder and loading it back gives the same model.</summary>
public class Gpt2CheckpointWriterTests
{
    static void AssertSameParameters(HookedTransformer expected, HookedTransformer actual)
    {
        var want = expected.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var got = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(want.Keys.Order(), got.Keys.Order());
        foreach (var (name, p) in want)
            Assert.True(p.equal(got[name]).all().item<bool>(), $"parameter {name} differs after the round trip");
    }

    [Fact]
    public void TheReferenceCheckpointSurvivesSaveAndLoad()
    {
        // The fixture was written by HuggingFace transformers: every tensor random, biases and LayerNorm gains included.
        string dir = Directory.CreateTempSubdirectory("gpt2-writer").FullName;
        try
        {
            using var original = ModelLoader.Load(TestFiles.Fixture("tiny-gpt2"));
            Gpt2CheckpointWriter.Save(original, dir);
            using var reloaded = ModelLoader.Load(dir);
            Assert.Equal(original.Config with { Name = "x" }, reloaded.Config with { Name = "x" });
            AssertSameParameters(original, reloaded);
            Assert.Equal(new[] { "config.json", "model.safetensors" }, Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void RefusesModelsAGpt2CheckpointCannotHold()
    {
        var config = new TransformerConfig
        {
            Name = "untied", Architecture = Architecture.Gpt2, NLayers = 1, DModel = 8, NHeads = 2, DHead = 4, DMlp = 16, DVocab = 10, NCtx = 4,
            TiedEmbeddings = false,
        };
        using var m = new HookedTransformer(config);
        Assert.Contains("untied", Assert.Throws<ArgumentException>(() => Gpt2CheckpointWriter.Save(m, Path.GetTempPath())).Message);
    }
}
