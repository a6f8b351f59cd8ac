using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Embedded;
using Workbook.Graph;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Tests.Discovery;

/// <summary>
/// ACDC's threshold runs in lockstep, with candidate sets stacked several per forward pass, decide exactly as the runs one
/// after the other with one forward pass per ablated set (a plain reimplementation of the algorithm here, the reference).
/// </summary>
public class AcdcLockstepTests
{
    static readonly Lazy<LoadedModel> Toy = new(() => ModelLoader.LoadWithTokenizer(ToyIoi.Alias));

    /// <summary>ACDC as the paper describes it: each threshold a run of its own, every candidate set its own forward pass (cached by set).</summary>
    static IReadOnlyList<(double Tau, int[] Removed, double Faithfulness)> Sequential(HookedTransformer model, TaskDefinition task,
        IReadOnlyList<TokenizedDataset> parts, IReadOnlyList<double> taus, int batchSize)
    {
        var graph = CircuitDiscovery.SearchGraph(model.Config, task, SearchSpace.Edge);
        using var data = DiscoveryData.Prepare(model, task, parts, batchSize);
        var target = CircuitDiscovery.DefaultTarget(DiscoveryAlgorithm.Acdc, data.Batches[0].Targets.Answers is not null);
        var values = data.Batches.Select(b => PatchValues.Compute(model, graph, AblationValue.Resample, PatchDirection.AblateClean, b.Pair, null, b.Prefix)).ToList();
        var losses = new Dictionary<string, double>();
        double Loss(bool[] ablated)
        {
            string key = string.Concat(ablated.Select(a => a ? '1' : '0'));
            if (losses.TryGetValue(key, out double known)) return known;
            double sum = 0;
            using var _ = no_grad();
            for (int b = 0; b < data.Batches.Count; b++)
            {
                using var scope = NewDisposeScope();
                var batch = data.Batches[b];
                using var masks = PatchMasks.ForEdges(graph, graph.Edges.Where(e => ablated[e.Index]).Select(e => new CircuitEdge(e, null)), batch.Pair.SeqLen, batch.Prefix);
                sum += data.PerPromptLoss(target, Patcher.Run(model, masks, values[b], batch.Pair.Clean), batch).sum().item<double>();
            }
            return losses[key] = sum / data.PromptCount;
        }
        var runs = new List<(double, int[], double)>();
        foreach (double tau in taus)
        {
            var ablated = new bool[graph.EdgeCount];
            double previous = 0;
            var removed = new List<int>();
            foreach (var edge in Acdc.EdgeOrder(graph))
            {
                ablated[edge.Index] = true;
                double loss = Loss(ablated);
                if (loss - previous < tau) { removed.Add(edge.Index); previous = loss; }
                else ablated[edge.Index] = false;
            }
            runs.Add((tau, removed.ToArray(), previous));
        }
        foreach (var v in values) v.Values?.Dispose();
        return runs;
    }

    static IReadOnlyList<ThresholdUnitResult> Lockstep(HookedTransformer model, TaskDefinition task, IReadOnlyList<TokenizedDataset> parts, AcdcOptions acdc, int batchSize) =>
        CircuitDiscovery.RunUnits(new DiscoveryRequest
        {
            Model = model, Task = task, Parts = parts, Algorithm = DiscoveryAlgorithm.Acdc, Acdc = acdc, BatchSize = batchSize, Threads = 1,
        }).Units.Cast<ThresholdUnitResult>().ToList();

    public static IEnumerable<object[]> Cases() => new[]
    {
        new object[] { "tracr-reverse", 1 }, new object[] { "tracr-reverse", 7 }, new object[] { "tracr-xproportion", 16 }, new object[] { "toy-ioi", 5 },
    };

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void LockstepRunsRemoveTheEdgesOfSequentialRuns(string taskName, int circuitsPerForward)
    {
        bool toy = taskName == "toy-ioi";
        // Several minutes on 2 cores (every candidate set of a few hundred edges, twice); the stacked logits themselves are
        // checked on toy-ioi by CircuitStackTests.
        Skip.If(toy && Environment.GetEnvironmentVariable("WORKBOOK_FULL_DISCOVERY") != "1", "Set WORKBOOK_FULL_DISCOVERY=1 to run ACDC on toy-ioi both ways (several minutes).");
        var task = toy ? KnownTasks.Ioi : KnownTasks.Get(taskName);
        var model = toy ? Toy.Value.Model : ModelLoader.Load(task.PaperModel);
        var parts = toy
            ? task.Tokenize(task.GenerateForEvaluation(Toy.Value.Tokenizer, 0, 8), Toy.Value.Tokenizer).Take(1).ToList()
            : task.Tokenize(task.GenerateForEvaluation(null, 0, 12), null);
        // Tracr: the paper's 120 thresholds; the toy model: 10 spread over its loss scale (KL, roughly 1e-4..1).
        var acdc = toy ? new AcdcOptions { TauExponents = new[] { -4, -3, -2, -1, 0 }, TauBases = new[] { 1, 5 } } : new AcdcOptions();
        int batchSize = toy ? 4 : 12;
        var reference = Sequential(model, task, parts, acdc.Taus(), batchSize);
        var stacked = Lockstep(model, task, parts, acdc with { CircuitsPerForward = circuitsPerForward }, batchSize);
        Assert.Equal(reference.Count, stacked.Count);
        for (int i = 0; i < reference.Count; i++)
        {
            Assert.Equal(reference[i].Tau, stacked[i].Tau);
            Assert.Equal(reference[i].Removed, stacked[i].Removed);
            Assert.Equal(reference[i].Faithfulness, stacked[i].Faithfulness); // exact: the same losses
        }
        // The sweep is not trivial: some thresholds remove edges and some keep edges.
        Assert.Contains(reference, r => r.Removed.Length > 0);
        Assert.Contains(reference, r => r.Removed.Length < CircuitDiscovery.SearchGraph(model.Config, task, SearchSpace.Edge).EdgeCount);
    }

    [Fact]
    public void AnOutOfRangeCircuitsPerForwardIsRefusedBeforeAnyForwardPass()
    {
        var task = KnownTasks.TracrReverse;
        var model = ModelLoader.Load(task.PaperModel);
        var parts = task.Tokenize(task.GenerateForEvaluation(null, 0, 4), null);
        foreach (int bad in new[] { 0, -1, CircuitStack.MaxCircuitsPerForward + 1 })
        {
            var e = Assert.Throws<ArgumentException>(() => Lockstep(model, task, parts, new AcdcOptions { CircuitsPerForward = bad }, 4));
            Assert.Equal($"The number of circuits per forward pass must be within 1..{CircuitStack.MaxCircuitsPerForward}, got {bad}.", e.Message);
        }
    }
}
