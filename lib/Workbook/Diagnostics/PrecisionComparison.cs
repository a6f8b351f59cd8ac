using System.Diagnostics;
using Workbook.Evaluation;
using Workbook.Experiments;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Progress;
using static TorchSharp.torch;

namespace Workbook.Diagnostics;

/// <summary>One methodology's median faithfulness in float32 and in a half-precision dtype, on the same prompts.</summary>
public sealed record PrecisionMedian(string Methodology, string Metric, double Float32, double Half)
{
    public double Difference => Half - Float32;
}

/// <summary>What running in half precision costs against float32 on the same prompts: logits and faithfulness medians, and the time of each.</summary>
public sealed record PrecisionComparisonResult(string Model, bool RandomWeights, string Task, string Circuit, string Device, string DType, int Prompts,
    double MaxAbsLogitDifference, double MaxAbsLogit, IReadOnlyList<PrecisionMedian> Medians, double Float32Seconds, double HalfSeconds)
{
    public double LargestMedianShift => Medians.Count == 0 ? 0 : Medians.Max(m => Math.Abs(m.Difference));
}

/// <summary>
/// Measures the accuracy cost of bfloat16 or float16 (<c>workbook bench precision</c>): loads the model in float32 and in
/// the half type, runs the same prompts, and reports the largest |logit difference| at the positions the metrics read
/// and each methodology's median faithfulness (the Figure 3 grid: nodes and edges × specific and all tokens × resample
/// and the task's mean) in both, with the time each took.
/// </summary>
public static class PrecisionComparison
{
    public static PrecisionComparisonResult Compare(string model, string task, string? circuit, ScalarType half, string device = "cpu", int? prompts = null,
        int? partsPerOrder = null, int? batchSize = null, IProgress<WorkProgress>? progress = null)
    {
        if (!Precision.IsHalf(half)) throw new ArgumentException($"Compare float32 with bfloat16 or float16, not {Precision.Name(half)}.");
        var f32 = Run(model, task, circuit, ScalarType.Float32, device, prompts, partsPerOrder, batchSize, progress);
        var h = Run(model, task, circuit, half, device, prompts, partsPerOrder, batchSize, progress);
        double maxDiff = 0, maxLogit = 0;
        for (int i = 0; i < f32.Outputs.Count; i++)
        {
            using var scope = NewDisposeScope();
            maxDiff = Math.Max(maxDiff, (f32.Outputs[i] - h.Outputs[i]).abs().max().item<float>());
            maxLogit = Math.Max(maxLogit, f32.Outputs[i].abs().max().item<float>());
        }
        foreach (var t in f32.Outputs.Concat(h.Outputs)) t.Dispose();
        var medians = f32.Medians.Select(m => new PrecisionMedian(m.Key.Methodology, m.Key.Metric, m.Value, h.Medians[m.Key])).ToList();
        return new PrecisionComparisonResult(f32.Model, f32.RandomWeights, task, f32.Circuit, device, Precision.Name(half), f32.Prompts, maxDiff, maxLogit, medians,
            f32.Seconds, h.Seconds);
    }

    sealed record Side(string Model, bool RandomWeights, string Circuit, int Prompts, IReadOnlyList<Tensor> Outputs,
        IReadOnlyDictionary<(string Methodology, string Metric), double> Medians, double Seconds);

    static Side Run(string model, string task, string? circuit, ScalarType dtype, string device, int? prompts, int? partsPerOrder, int? batchSize, IProgress<WorkProgress>? progress)
    {
        var definition = Tasks.KnownTasks.Get(task);
        var parameters = new FigureParameters(model, device, Precision.Name(dtype), prompts, batchSize);
        using var full = FigureSetup.Custom(model, task, circuit ?? definition.PaperCircuit, parameters: parameters, progress: progress);
        var setup = partsPerOrder is int k ? full.WithFirstParts(k) : full;
        var clock = Stopwatch.StartNew();
        // The unpatched model's outputs at the read positions, in float32 on the CPU, prompt by prompt.
        var outputs = new List<Tensor>();
        using (no_grad())
            foreach (var part in setup.Parts)
                foreach (var batch in Evaluator.Batches(part, setup.BatchSize ?? definition.DefaultBatchSize, setup.Loaded.Model.Device))
                    using (batch)
                    using (var scope = NewDisposeScope())
                        outputs.Add(FaithfulnessMetrics.ReadOutputs(setup.Loaded.Model.Forward(batch.Pair.Clean), definition.Read).to(ScalarType.Float32).cpu().DetachFromDisposeScope());
        var grid = new ReportGrid { Values = new[] { AblationValue.Resample, AblationValue.Mean(definition.PaperMean) }, Sets = new[] { AblatedSet.Complement } };
        var methodologies = RobustnessReport.Methodologies(grid, setup.Circuit, definition.PaperMean);
        var metric = setup.Parts[0].HasTokenAnswers ? MetricKind.LogitDiffRecovered : MetricKind.Parse(definition.PaperMetric);
        var result = Evaluator.Run(setup.Request(methodologies, new[] { metric }));
        var medians = result.GroupBy(r => (r.Methodology.Label, r.Metric.Label))
            .ToDictionary(g => g.Key, g => Statistics.Median(g.Select(r => r.Value).Where(double.IsFinite).OrderBy(v => v).ToArray()));
        return new Side(setup.ModelName, setup.RandomWeights is not null, setup.Circuit.Name, setup.PromptCount, outputs, medians, clock.Elapsed.TotalSeconds);
    }
}
