using System.Text.Json;
using Workbook.Circuits;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tests.Cli;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>
/// Gaussian-noise ablation (causal tracing): scale 0 is the clean run; the noise it adds to the embeddings has mean 0 and
/// standard deviation scale × the embeddings' (computed here from W_E directly), is seeded, linear in the scale, and
/// spares the never-patched prefix; the command line names it like any other value.
/// </summary>
public class GaussianNoiseTests
{
    /// <summary>The noise added to Resid Start (source 0: the embeddings plus positions), [B, T, D] in float64.</summary>
    static Tensor AddedNoise(HookedTransformer model, PromptPair batch, double scale, int seed, int prefix = 0)
    {
        var graph = ComputationGraph.Factorized(model.Config);
        Assert.Equal("Resid Start", graph.Sources[0].Name);
        var noisy = PatchValues.Compute(model, graph, AblationValue.Noise(scale, seed), PatchDirection.AblateClean, batch, neverPatchedPrefix: prefix).Values!;
        var clean = PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.RestoreCorrupt, batch).Values!; // the clean prompts' own sources
        return (noisy[0] - clean[0]).to(ScalarType.Float64);
    }

    [Fact]
    public void ZeroScaleReproducesTheCleanRun()
    {
        var (model, batch) = FixtureModels.WithPrompts("tiny-gpt2");
        using var scope = NewDisposeScope();
        var graph = ComputationGraph.Factorized(model.Config);
        var clean = model.Forward(batch.Clean);
        // The empty circuit's complement is every edge: every destination reads the noise values.
        var methodology = new Methodology { Positions = TokenPositions.All, Value = AblationValue.Parse("noise-0") };
        TensorAssert.Close(clean, CircuitPatching.PatchedLogits(model, Circuit.Empty(graph), methodology, batch), 1e-5, "noise-0");
        var noisy = CircuitPatching.PatchedLogits(model, Circuit.Empty(graph), methodology with { Value = AblationValue.Noise(1, 0) }, batch);
        Assert.True((noisy - clean).abs().max().item<float>() > 1e-2, "scale 1 should move the logits");
    }

    [Fact]
    public void AddedNoiseHasMeanZeroAndTheScaledStandardDeviationOfTheEmbeddings()
    {
        var (model, batch) = FixtureModels.WithPrompts("tiny-gpt2");
        using var scope = NewDisposeScope();
        const double scale = 2.5;
        var noise = AddedNoise(model, batch, scale, seed: 4);
        // σ of the token embeddings the noise is scaled by, from W_E and the token ids alone.
        double embeddingStd = model.embed.W_E.index_select(0, batch.Clean.reshape(-1)).to(ScalarType.Float64).std().item<double>();
        long n = noise.numel();
        double mean = noise.mean().item<double>(), std = noise.std().item<double>();
        double expectedStd = scale * embeddingStd;
        Assert.True(Math.Abs(mean) < 4 * expectedStd / Math.Sqrt(n), $"mean {mean} of {n} noise values is not ~0 (σ {expectedStd})");
        Assert.True(Math.Abs(std / expectedStd - 1) < 4 / Math.Sqrt(2.0 * n), $"std {std}, expected {expectedStd}");
    }

    [Fact]
    public void NoiseIsSeededLinearInTheScaleAndSparesTheNeverPatchedPrefix()
    {
        var (model, batch) = FixtureModels.WithPrompts("tiny-gpt2");
        using var scope = NewDisposeScope();
        var a = AddedNoise(model, batch, 1, seed: 7);
        TensorAssert.Close(a, AddedNoise(model, batch, 1, seed: 7), 0, "same seed");
        Assert.True((a - AddedNoise(model, batch, 1, seed: 8)).abs().max().item<double>() > 1e-3, "another seed gives other noise");
        TensorAssert.Close(a * 3, AddedNoise(model, batch, 3, seed: 7), 1e-5, "three times the scale, three times the noise");
        var withPrefix = AddedNoise(model, batch, 1, seed: 7, prefix: 3);
        Assert.Equal(0, withPrefix[.., ..3].abs().max().item<double>());
        TensorAssert.Close(a[.., 3..], withPrefix[.., 3..], 1e-6, "after the prefix");
    }

    [Fact]
    public void EvalNamesNoiseFromTheCommandLine()
    {
        string dir = Directory.CreateTempSubdirectory("wb-noise").FullName;
        try
        {
            string circuit = Path.Combine(dir, "c.json");
            File.WriteAllText(circuit, "{\"edges\":[{\"src\":\"Resid Start\",\"dest\":\"A1.0.V\",\"position\":null}]}");
            string[] common = { "eval", "--model", TestFiles.Fixture("tiny-gpt2"), "--task", "tracr-reverse", "--circuit", circuit, "--metric", "kl", "--prompts", "6", "--json" };
            JsonElement Summary(params string[] more)
            {
                var r = CliRunner.Run(common.Concat(more).ToArray());
                Assert.True(r.ExitCode == 0, r.Err);
                return JsonDocument.Parse(r.Out).RootElement.GetProperty("summary")[0].Clone();
            }
            var zero = Summary("--ablation", "noise-0", "--positions", "all");
            Assert.Equal("edge/all/noise-0-seed0/ablate-clean/complement", zero.GetProperty("methodology").GetString());
            Assert.True(zero.GetProperty("values").GetProperty("max").GetDouble() < 1e-9, "noise-0 is the clean run: KL 0");
            var noisy = Summary("--ablation", "noise-2-seed5", "--positions", "all");
            Assert.True(noisy.GetProperty("values").GetProperty("mean").GetDouble() > 1e-6);
            // The whole label on its own gives the same numbers.
            var byLabel = Summary("--methodology", "edge/all/noise-2-seed5/ablate-clean/complement");
            Assert.Equal(noisy.GetRawText(), byLabel.GetRawText());
            var mixed = CliRunner.Run(common.Concat(new[] { "--methodology", "edge/all/zero/ablate-clean/complement", "--ablation", "zero" }).ToArray());
            Assert.Equal(1, mixed.ExitCode);
            Assert.Contains("--ablation", mixed.Err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
