using Workbook.Graph;
using Workbook.Checkpoints;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Tests.Evaluation;

/// <summary>
/// Work shared across a grid of methodologies (<see cref="EvaluationCache"/>) changes nothing in the results: every row and
/// every full-model value is bit for bit the one each methodology gets when it computes its clean runs, patch-source
/// activations and dataset means on its own (<c>ReuseWork = false</c>, which runs them per methodology as before).
/// </summary>
public class EvaluationCacheTests
{
    static readonly Lazy<LoadedModel> ToyIoi = new(() => ModelLoader.LoadWithTokenizer("toy-ioi"));

    /// <summary>Three IOI parts of 6 prompts (batches of 4 and 2) for the toy model.</summary>
    static IReadOnlyList<TokenizedDataset> Parts() => FigureSetup.PrepareParts(KnownTasks.Ioi, ToyIoi.Value, seed: 3, prompts: 6).Take(3).ToArray();

    /// <summary>Nodes and edges × every ablation value × specific and all positions × both sets, in both directions.</summary>
    static IReadOnlyList<Methodology> Grid()
    {
        var values = new[]
        {
            AblationValue.Resample, AblationValue.Zero, AblationValue.Mean(MeanOver.Corrupt), AblationValue.Mean(MeanOver.Clean),
            AblationValue.Mean(MeanOver.CleanAndCorrupt), AblationValue.Mean(MeanOver.Batch), AblationValue.Mean(MeanOver.Corrupt, tokenwise: false),
        };
        var circuit = CircuitChoice.Parse("toy-ioi");
        return new[] { PatchDirection.AblateClean, PatchDirection.RestoreCorrupt }
            .SelectMany(d => RobustnessReport.Methodologies(new ReportGrid { Values = values, Direction = d }, circuit, MeanOver.Corrupt)).ToList();
    }

    static EvaluationRequest Request(IReadOnlyList<Methodology> grid, EvaluationCache? cache = null, bool reuse = true) => new()
    {
        Model = ToyIoi.Value.Model, Task = KnownTasks.Ioi, Parts = Parts(), Circuit = CircuitChoice.Parse("toy-ioi"), Methodologies = grid,
        Metrics = new[] { MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans, MetricKind.Kl, MetricKind.AnswerProb },
        BatchSize = 4, ReuseWork = reuse, Cache = cache,
    };

    static void AssertSameBits(EvaluationResult expected, EvaluationResult actual)
    {
        Assert.Equal(expected.Rows.Count, actual.Rows.Count);
        for (int i = 0; i < expected.Rows.Count; i++)
        {
            var (e, a) = (expected.Rows[i], actual.Rows[i]);
            Assert.True(e with { Value = 0 } == a with { Value = 0 }, $"row {i}: {e} vs {a}");
            Assert.True(BitConverter.DoubleToInt64Bits(e.Value) == BitConverter.DoubleToInt64Bits(a.Value), $"row {i} ({e.MethodologyLabel}, {e.Metric}): {e.Value:R} vs {a.Value:R}");
        }
        Assert.Equal(expected.FullModel, actual.FullModel);
    }

    [Fact]
    public void SharingWorkAcrossTheGridGivesTheRowsOfEachMethodologyAlone()
    {
        var grid = Grid();
        Assert.True(grid.Count >= 40, $"the grid has {grid.Count} methodologies");
        using var alone = new EvaluationCache(ToyIoi.Value.Model, reuse: false);
        var unshared = Evaluator.RunWithBaseline(Request(grid, alone));
        using var shared = new EvaluationCache(ToyIoi.Value.Model);
        var reused = Evaluator.RunWithBaseline(Request(grid, shared));
        AssertSameBits(unshared, reused);

        // The work done: 3 parts of 2 batches. Alone, each recorded methodology records its batch and each view's means make
        // their own pass; shared, one recording per batch and side serves both views, and one pass serves both views' means.
        int recorded = grid.Count(m => m.Value is ResampleAblation or MeanAblation { Over: MeanOver.Batch });
        Assert.Equal(3 * 2 * recorded, alone.Statistics.Recordings);
        // Two sides (ablate-clean records corrupt prompts, restore-corrupt clean ones) of each batch, all taken along by the
        // mean pass, which runs the same prompts (the toy model's recordings fit the default budget many times over).
        Assert.Equal(3 * 2 * 2, shared.Statistics.RecordingsWithMeans);
        Assert.Equal(0, shared.Statistics.Recordings);
        Assert.Equal(3 * 2 * 2 * 2, alone.Statistics.MeanPasses); // two views, each 2 passes (clean, corrupt) per batch
        Assert.Equal(3 * 2 * 2, shared.Statistics.MeanPasses);
        Assert.Equal(3 * 2, shared.Statistics.CleanRuns);
    }

    [Theory]
    [InlineData(0, 0)] // no room: every batch side recorded on its own
    [InlineData(1, 1)] // a byte short of a 4-prompt batch: only the 2-prompt batch's clean side fits, the rest is recorded on its own
    [InlineData(4, 4)] // room for all: 2 batches (4 and 2 prompts) x 2 sides
    public void RecordingsTakenAlongByTheMeanPassStayWithinTheirBudgetAndChangeNoRow(int recordingsOfRoom, int takenAlong)
    {
        var grid = Grid();
        var part = Parts().Take(1).ToArray();
        var views = new[] { ComputationGraph.Factorized(ToyIoi.Value.Model.Config, separateQkv: true), ComputationGraph.Residual(ToyIoi.Value.Model.Config) };
        long oneRecording = views.Sum(v => (long)v.Sources.Count) * part[0].SeqLen * ToyIoi.Value.Model.Config.DModel * sizeof(float) * 4; // a batch of 4 prompts
        var expected = Evaluator.RunWithBaseline(Request(grid, reuse: false) with { Parts = part });
        using var cache = new EvaluationCache(ToyIoi.Value.Model) { KeptRecordingBytes = recordingsOfRoom * oneRecording - 1 };
        var actual = Evaluator.RunWithBaseline(Request(grid, cache) with { Parts = part });
        AssertSameBits(expected, actual);
        Assert.Equal(takenAlong, cache.Statistics.RecordingsWithMeans);
        Assert.Equal(2 * 2 - takenAlong, cache.Statistics.Recordings);
    }

    [Fact]
    public void ACacheSharedBetweenEvaluationsReusesCleanRunsAndMeansWithoutChangingThem()
    {
        var grid = Grid();
        var first = grid.Take(grid.Count / 2).ToList();
        var second = grid.Skip(grid.Count / 2).ToList();
        var expectedFirst = Evaluator.RunWithBaseline(Request(first, reuse: false));
        var expectedSecond = Evaluator.RunWithBaseline(Request(second, reuse: false));
        using var cache = new EvaluationCache(ToyIoi.Value.Model);
        var parts = Parts();
        var a = Evaluator.RunWithBaseline(Request(first, cache) with { Parts = parts });
        int cleanRuns = cache.Statistics.CleanRuns;
        var b = Evaluator.RunWithBaseline(Request(second, cache) with { Parts = parts });
        AssertSameBits(expectedFirst, a);
        AssertSameBits(expectedSecond, b);
        Assert.Equal(cleanRuns, cache.Statistics.CleanRuns); // the second evaluation ran no clean prompts again
    }

    [Fact]
    public void ACacheMadeForAnotherModelIsRefused()
    {
        using var other = ModelLoader.Load("tracr-reverse");
        using var cache = new EvaluationCache(other);
        var e = Assert.Throws<ArgumentException>(() => Evaluator.Run(Request(Grid().Take(1).ToList(), cache)));
        Assert.Contains("another model", e.Message);
    }
}
