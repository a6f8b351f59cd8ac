using System.Diagnostics;
using Workbook.Experiments;
using Workbook.Model;
using Workbook.Progress;
using Workbook.Tasks;

namespace Workbook.Diagnostics;

/// <summary>What one paper figure cost: its setting, the time to load and to compute, and the process's peak memory.</summary>
public sealed record FigureBenchmarkResult(string Figure, string Model, bool RandomWeights, string Task, string Device, string DeviceName, string DType,
    int Parts, int Prompts, int Methodologies, bool ReuseWork, double LoadSeconds, double ComputeSeconds, long PeakRssBytes, int Threads)
{
    public double TotalSeconds => LoadSeconds + ComputeSeconds;
}

/// <summary>
/// Times the evaluations behind one of the paper's figures at the paper's prompt counts, on the paper's model (or its
/// random-weights stand-in from <c>workbook models random</c>) in the hub cache: <c>workbook bench figure 3</c>. Load time
/// includes reading the checkpoint and preparing the prompts; compute time is the figure's evaluations, with the device
/// synchronised. Peak memory is the process's resident set high-water mark (VmHWM; CPU memory only).
/// </summary>
public static class FigureBenchmark
{
    /// <summary>A paper figure: its task, the prompts per part the paper uses, and how many methodologies it evaluates.</summary>
    sealed record FigureSpec(string Task, int Prompts, Func<FigureSetup, int> Run);

    /// <summary>Figure 4's ABC dataset sizes (spec A.2).</summary>
    public static int[] Figure4BatchSizes { get; } = { 2, 5, 10, 20, 50, 100, 200 };

    static readonly IReadOnlyDictionary<string, FigureSpec> Figures = new Dictionary<string, FigureSpec>(StringComparer.OrdinalIgnoreCase)
    {
        ["3"] = new("ioi", 100, s => { PaperExperiments.NodesEdgesTokensValues(s); return 8; }),
        ["4"] = new("ioi", 200, s => { PaperExperiments.AbcDatasetSize(s, Figure4BatchSizes); return Figure4BatchSizes.Length; }),
        ["9"] = new("docstring", 50, s => { PaperExperiments.CandidatesAndProbability(s); return 8; }),
        ["10"] = new("sports-players", 200, s => { PaperExperiments.CircuitAgainstAblatedModel(s); return 4; }),
    };

    public static IReadOnlyCollection<string> Names => Figures.Keys.ToArray();

    /// <param name="partsPerOrder">IOI: only the first templates of each name order (a part of the figure, for quicker comparisons); null: all.</param>
    public static FigureBenchmarkResult Run(string figure, FigureParameters parameters, bool reuseWork = true, IProgress<WorkProgress>? progress = null,
        int? partsPerOrder = null)
    {
        var spec = Figures.TryGetValue(figure.Trim(), out var f) ? f
            : throw new ArgumentException($"There is no figure '{figure}' to time; choose one of {string.Join(", ", Figures.Keys)}.");
        var (device, _) = parameters.Validate();
        var task = KnownTasks.Get(spec.Task);
        bool previous = FigureSetup.EmbeddedOnly;
        var clock = Stopwatch.StartNew();
        FigureSetup setup;
        try
        {
            FigureSetup.EmbeddedOnly = false;
            setup = FigureSetup.For(spec.Task, FallbackSetup.ToyIoi(), parameters, paperPrompts: spec.Prompts, progress: progress);
        }
        finally
        {
            FigureSetup.EmbeddedOnly = previous;
        }
        using (setup)
        {
            if (!setup.IsPaperModel)
                throw new ArgumentException($"Figure {figure} is timed on the paper's model '{task.PaperModel}', which is not in the hub cache. " +
                                            $"Pull it (workbook models pull {task.PaperModel}) or write a stand-in with its shape (workbook models random --like {task.PaperModel}).");
            var timed = (partsPerOrder is int k ? setup.WithFirstParts(k) : setup).WithReuse(reuseWork);
            double load = clock.Elapsed.TotalSeconds;
            clock.Restart();
            int methodologies = spec.Run(timed);
            Devices.Synchronize(device);
            double compute = clock.Elapsed.TotalSeconds;
            return new FigureBenchmarkResult(figure, setup.ModelName, setup.RandomWeights is not null, task.Name, parameters.Device, Devices.Describe(device),
                Precision.Name(setup.Loaded.Model.DType), timed.Parts.Count, timed.PromptCount, methodologies, reuseWork, load, compute, PeakResidentBytes(),
                TorchSharp.torch.get_num_threads());
        }
    }

    /// <summary>VmHWM of this process (0 where /proc is not available).</summary>
    public static long PeakResidentBytes() => ProcessStatus.Bytes("VmHWM");
}
