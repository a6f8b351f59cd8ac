using Workbook.Checkpoints;
using Workbook.Diagnostics;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Patching;

/// <summary>
/// Dataset means summed source by source during the forward pass, against the obvious computation: record every source of
/// every prompt, then average the recording in float64.
/// </summary>
public class MeanReferenceTests
{
    static readonly Lazy<LoadedModel> ToyIoi = new(() => ModelLoader.LoadWithTokenizer("toy-ioi"));
    static readonly Lazy<HookedTransformer> TracrReverse = new(() => ModelLoader.Load("tracr-reverse"));
    static readonly Lazy<LoadedModel> ToyDocstring = new(() => ModelLoader.LoadWithTokenizer("toy-docstring"));

    static (HookedTransformer Model, IReadOnlyList<PromptPair> Batches) Setup(string name)
    {
        HookedTransformer model;
        PromptPair pair;
        if (name == "toy-docstring")
        {
            model = ToyDocstring.Value.Model;
            var part = FigureSetup.PrepareParts(KnownTasks.Docstring, ToyDocstring.Value, seed: 1, prompts: 5)[0];
            pair = Evaluator.Batches(part, 5, model.Device)[0].Pair;
        }
        else if (name == "tracr-reverse")
        {
            model = TracrReverse.Value;
            pair = new PromptPair(PatchingWorkload.RandomTokens(4, model.Config.NCtx, model.Config.DVocab, 1), PatchingWorkload.RandomTokens(4, model.Config.NCtx, model.Config.DVocab, 2));
        }
        else (model, pair) = FixtureModels.WithPrompts(name);
        // Three batches of different sizes: the fixture's prompts split unevenly, and the same prompts with the sides swapped.
        long n = pair.BatchSize;
        Assert.True(n >= 2, $"{name} has {n} prompts");
        var batches = new List<PromptPair>
        {
            new(pair.Clean.narrow(0, 0, 1), pair.Corrupt.narrow(0, 0, 1)),
            new(pair.Clean.narrow(0, 1, n - 1), pair.Corrupt.narrow(0, 1, n - 1)),
            new(pair.Corrupt, pair.Clean),
        };
        return (model, batches);
    }

    /// <summary>The slow way: each batch's sources recorded into [S, B, T, D], summed over the batch in float64, then divided.</summary>
    static Tensor RecordedMean(HookedTransformer model, ComputationGraph graph, IEnumerable<Tensor> prompts)
    {
        Tensor? sum = null;
        long count = 0;
        foreach (var tokens in prompts)
        {
            var recorded = SourceRecorderSet.Record(model, new[] { graph }, tokens)[0];
            var batchSum = recorded.to(ScalarType.Float64).sum(dim: 1, keepdim: true);
            sum = sum is null ? batchSum : sum + batchSum;
            count += tokens.shape[0];
        }
        return (sum! / count).to(model.DType);
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();

    static IReadOnlyList<ComputationGraph> Views(HookedTransformer model) => new[]
    {
        ComputationGraph.Factorized(model.Config, separateQkv: true), ComputationGraph.Residual(model.Config),
    };

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("tiny-neox")]     // parallel blocks: no Resid Mid
    [InlineData("toy-docstring")] // attention only: no MLPs
    [InlineData("tracr-reverse")] // one head per block
    public void MeansSummedDuringThePassEqualTheRecordingAveragedAfterwards(string name)
    {
        var (model, batches) = Setup(name);
        using var scope = NewDisposeScope();
        var views = Views(model);
        var means = MeanReference.Compute(model, views, batches);
        int done = 0;
        for (int i = 0; i < views.Count; i++)
        {
            var expectedClean = RecordedMean(model, views[i], batches.Select(b => b.Clean));
            var expectedCorrupt = RecordedMean(model, views[i], batches.Select(b => b.Corrupt));
            Assert.Equal(new long[] { views[i].Sources.Count, 1, batches[0].SeqLen, model.Config.DModel }, means[i].Clean!.shape);
            // Bit for bit: the same float64 sums over each batch, added batch by batch.
            Assert.True(Same(expectedClean, means[i].Clean!), $"{views[i].View} clean: max |diff| {(expectedClean - means[i].Clean!).abs().max().item<float>()}");
            Assert.True(Same(expectedCorrupt, means[i].Corrupt!), $"{views[i].View} corrupt: max |diff| {(expectedCorrupt - means[i].Corrupt!).abs().max().item<float>()}");
            Assert.True(Same(((expectedClean + expectedCorrupt) / 2), means[i].Both!), $"{views[i].View} both");
            Assert.Equal(batches.Sum(b => (int)b.BatchSize), means[i].PromptCount);
            done++;
        }
        Assert.Equal(2, done);
        foreach (var m in means) m.Dispose();
    }

    [Fact]
    public void OnlyTheSidesAskedForAreComputedAndAMissingSideIsAClearError()
    {
        var (model, batches) = Setup("tiny-gpt2");
        var graph = ComputationGraph.Factorized(model.Config, separateQkv: true);
        using var both = MeanReference.Compute(model, graph, batches);
        using var corrupt = MeanReference.Compute(model, graph, batches, MeanSides.Corrupt);
        Assert.Equal(MeanSides.Corrupt, corrupt.Sides);
        Assert.Null(corrupt.Clean);
        Assert.Null(corrupt.Both);
        Assert.True(Same(both.Corrupt!, corrupt.For(MeanOver.Corrupt)));
        var e = Assert.Throws<ArgumentException>(() => corrupt.For(MeanOver.Clean));
        Assert.Contains("corrupt prompts only", e.Message);
        Assert.Contains("MeanSides.Clean", e.Message);
        Assert.Throws<ArgumentException>(() => corrupt.For(MeanOver.CleanAndCorrupt));
        Assert.Throws<ArgumentException>(() => MeanReference.Compute(model, graph, batches, (MeanSides)0));

        Assert.Equal(MeanSides.Corrupt, MeanAblation.SidesFor(new[] { AblationValue.Resample, AblationValue.Mean(MeanOver.Corrupt), AblationValue.Mean(MeanOver.Batch) }));
        Assert.Equal(MeanSides.CleanAndCorrupt, MeanAblation.SidesFor(new[] { AblationValue.Mean(MeanOver.Clean), AblationValue.Mean(MeanOver.Corrupt, tokenwise: false) }));
        Assert.Equal((MeanSides)0, MeanAblation.SidesFor(new[] { AblationValue.Resample, AblationValue.Mean(MeanOver.Batch) }));
    }

    [Fact]
    public void TheCacheComputesASideItLacksAndReusesWhatItHas()
    {
        var model = ToyIoi.Value.Model;
        var part = FigureSetup.PrepareParts(KnownTasks.Ioi, ToyIoi.Value, seed: 3, prompts: 6)[0];
        var batches = Evaluator.Batches(part, 4, model.Device).Select(b => b.Pair).ToList();
        var graph = ComputationGraph.Factorized(model.Config, separateQkv: true);
        using var cache = new EvaluationCache(model);

        var corrupt = cache.Means(part, 4, new[] { graph }, batches, MeanSides.Corrupt)[graph.View];
        Assert.Equal(MeanSides.Corrupt, corrupt.Sides);
        Assert.Equal(batches.Count, cache.Statistics.MeanPasses); // the corrupt prompts only
        var again = cache.Means(part, 4, new[] { graph }, batches, MeanSides.Corrupt)[graph.View];
        Assert.Same(corrupt, again);
        Assert.Equal(batches.Count, cache.Statistics.MeanPasses);

        var clean = cache.Means(part, 4, new[] { graph }, batches, MeanSides.Clean)[graph.View];
        Assert.Equal(MeanSides.CleanAndCorrupt, clean.Sides); // recomputed with both, so the next request of either is reused
        Assert.Equal(3 * batches.Count, cache.Statistics.MeanPasses);
        Assert.True(Same(corrupt.Corrupt!, clean.Corrupt!)); // the replaced reference is still usable until its part is dropped
        Assert.Same(clean, cache.Means(part, 4, new[] { graph }, batches, MeanSides.CleanAndCorrupt)[graph.View]);
        Assert.Equal(3 * batches.Count, cache.Statistics.MeanPasses);
    }
}
