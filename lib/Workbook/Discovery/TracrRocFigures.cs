using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Tasks;

namespace Workbook.Discovery;

/// <summary>Which Tracr ground truth a curve is measured against (spec C.4).</summary>
public enum GroundTruth
{
    /// <summary>The resample-ablation ground truth (AutoCircuit's official/true edges): circuits <c>tracr-*-ours</c>.</summary>
    Ours,
    /// <summary>Conmy et al.'s zero-ablation circuits: <c>tracr-*-theirs</c>.</summary>
    Theirs,
}

/// <summary>What the Section 5 figures are computed from; the defaults are the paper's (spec A.5).</summary>
public sealed record TracrRocOptions
{
    public IReadOnlyList<string> Tasks { get; init; } = new[] { KnownTasks.TracrReverse.Name, KnownTasks.TracrXProportion.Name };
    public IReadOnlyList<DiscoveryAlgorithm> Algorithms { get; init; } = DiscoveryNames.PaperAlgorithms;
    public IReadOnlyList<SearchSpace> Searches { get; init; } = new[] { SearchSpace.Edge, SearchSpace.Node };
    /// <summary>The first prompts after AutoCircuit's seed-42 shuffle (200 in the paper).</summary>
    public int Prompts { get; init; } = 200;
    /// <summary>Seed of the dataset generator and of subnetwork probing.</summary>
    public int Seed { get; init; }
    public AcdcOptions Acdc { get; init; } = new();
    public SubnetworkProbingOptions SubnetworkProbing { get; init; } = new();
    /// <summary>libtorch threads while discovering (see <see cref="DiscoveryRequest.Threads"/>); null leaves the setting alone.</summary>
    public int? Threads { get; init; } = 1;
    /// <summary>AutoCircuit-format dataset files by task name, to use the paper's exact prompt files instead of generated ones.</summary>
    public IReadOnlyDictionary<string, string>? DatasetFiles { get; init; }
    /// <summary>Compute device of the Tracr models ("cpu", "cuda", "auto"); the models are tiny, so the CPU is usually fastest.</summary>
    public string Device { get; init; } = "cpu";
}

/// <summary>One curve of Figure 5 or 12: an algorithm's scores on a task, searched over edges or nodes, against a ground truth.</summary>
public sealed record RocPanel(string Task, DiscoveryAlgorithm Algorithm, SearchSpace Search, GroundTruth Truth, string Circuit, RocCurve Curve)
{
    /// <summary>The paper's panel title, e.g. "Reverse (Ours)".</summary>
    public string Title => $"{(Task == KnownTasks.TracrReverse.Name ? "Reverse" : Task == KnownTasks.TracrXProportion.Name ? "X-Proportion" : Task)} ({Truth})";
}

/// <summary>
/// The data of the paper's Figures 5 and 12: per task × algorithm × search × ground truth, the pessimistic ROC curve and
/// its area, with the scores they come from.
/// </summary>
public sealed record TracrRocData(IReadOnlyList<RocPanel> Curves, IReadOnlyList<EdgeScores> Scores)
{
    /// <summary>Figure 5: edge search; columns Reverse (Theirs), X-Proportion (Theirs), Reverse (Ours), X-Proportion (Ours).</summary>
    public IReadOnlyList<RocPanel> Figure5 => Curves.Where(c => c.Search == SearchSpace.Edge)
        .OrderBy(c => c.Truth == GroundTruth.Theirs ? 0 : 1).ThenBy(c => c.Task == KnownTasks.TracrReverse.Name ? 0 : 1).ThenBy(c => c.Algorithm).ToList();

    /// <summary>Figure 12: the "ours" ground truth; rows node search, edge search; columns Reverse, X-Proportion.</summary>
    public IReadOnlyList<RocPanel> Figure12 => Curves.Where(c => c.Truth == GroundTruth.Ours)
        .OrderBy(c => c.Search == SearchSpace.Node ? 0 : 1).ThenBy(c => c.Task == KnownTasks.TracrReverse.Name ? 0 : 1).ThenBy(c => c.Algorithm).ToList();

    public RocPanel Get(string task, DiscoveryAlgorithm algorithm, SearchSpace search, GroundTruth truth) =>
        Curves.FirstOrDefault(c => c.Task == task && c.Algorithm == algorithm && c.Search == search && c.Truth == truth)
        ?? throw new KeyNotFoundException($"No curve for {task}, {algorithm.Name()}, {search.Name()} search, {truth}.");
}

/// <summary>Computes <see cref="TracrRocData"/>: every discovery run on the Tracr models (nothing to download), then the ROC curves.</summary>
public static class TracrRocFigures
{
    public static TracrRocData Compute(TracrRocOptions? options = null, IProgress<WorkProgress>? progress = null)
    {
        options ??= new TracrRocOptions();
        var curves = new List<RocPanel>();
        var allScores = new List<EdgeScores>();
        foreach (var taskName in options.Tasks)
        {
            var task = KnownTasks.Get(taskName);
            if (!task.PreTokenized || !OfficialCircuits.Exists($"{task.Name}-ours"))
                throw new ArgumentException($"Task '{taskName}' is not a Tracr task with ours/theirs ground truths.");
            using var model = ModelLoader.Load(task.PaperModel, new LoadOptions { Device = options.Device });
            var parts = options.DatasetFiles is { } files && files.TryGetValue(task.Name, out var file)
                ? task.Tokenize(task.Select(new[] { AutoCircuitJson.ReadFile(file) }, options.Prompts), null)
                : task.Tokenize(task.GenerateForEvaluation(null, options.Seed, options.Prompts), null);
            foreach (var search in options.Searches)
                foreach (var algorithm in options.Algorithms)
                {
                    var result = CircuitDiscovery.Run(new DiscoveryRequest
                    {
                        Model = model, Task = task, Parts = parts, Algorithm = algorithm, Search = search, Seed = options.Seed,
                        Acdc = options.Acdc, SubnetworkProbing = options.SubnetworkProbing, Threads = options.Threads, Progress = progress,
                    });
                    var scores = result.Scores;
                    allScores.Add(scores);
                    foreach (var truth in new[] { GroundTruth.Ours, GroundTruth.Theirs })
                    {
                        string name = $"{task.Name}-{truth.ToString().ToLowerInvariant()}";
                        var circuit = OfficialCircuits.Get(name).Circuit.Resolve(scores.Graph, WordPositions.Empty, TokenPositions.All);
                        curves.Add(new RocPanel(task.Name, algorithm, search, truth, name, Roc.Compute(scores, circuit)));
                    }
                }
        }
        return new TracrRocData(curves, allScores);
    }
}
