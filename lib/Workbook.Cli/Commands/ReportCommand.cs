using System.CommandLine;
using System.Text.Json;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Sharding;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook report</c>: a circuit's faithfulness over the grid of methodologies, with a sensitivity summary.</summary>
public static class ReportCommand
{
    public sealed record EntryJson(int Rank, string Methodology, string Component, string Granularity, string Ablation, string Positions, string Direction,
        string Set, DistributionSummary Values, double? RatioOfMeans, double Deviation)
    {
        public static EntryJson Of(ReportEntry e)
        {
            var f = EvaluationExport.MethodologyFields.Of(e.Methodology);
            return new(e.Rank, f.Label, f.Component, f.Granularity, f.Ablation, f.Positions, f.Direction, f.Set, e.Values, e.RatioOfMeans, e.Deviation);
        }
    }

    public sealed record ReportJson(string Task, string Circuit, string Model, string Metric, int Prompts, double FullModelMedian,
        IReadOnlyList<EntryJson> Faithfulness, IReadOnlyList<EntryJson> CircuitAblated, Sensitivity Sensitivity, PairedComparison? HighestVsLowest,
        bool RandomWeights);

    public static Command Build()
    {
        var shared = new EvaluationOptions();
        var metric = TaskInputs.Metric("The metric to rank by (default: logit-diff-recovered when the task has answer tokens, else the task's metric).");
        var components = new Option<string?>("--components") { Description = "Components to vary, comma-separated (default: those the circuit has)." };
        var values = TaskInputs.Ablation("--values", "Ablation values to vary, comma-separated (default: resample, the task's mean, zero).");
        var positions = new Option<string?>("--positions") { Description = "Token positions to vary: specific,all (default: both when the circuit has positions)." };
        var sets = new Option<string?>("--sets") { Description = "Ablated sets to vary: complement,circuit (default: both)." };
        var direction = new Option<string>("--direction") { Description = "ablate-clean or restore-corrupt.", DefaultValueFactory = _ => "ablate-clean" };
        var cmd = new Command("report", "Evaluate a circuit over the grid of ablation methodologies and show how much the verdict depends on them.")
        {
            metric, components, values, positions, sets, direction,
        };
        shared.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var shard = shared.ParseShard(parse);
            var (task, choice) = shared.TaskAndCircuit(parse);
            var grid = new ReportGrid
            {
                Components = TaskInputs.ParseList(parse.GetValue(components), Methodology.Components.Parse),
                Values = TaskInputs.ParseList(parse.GetValue(values), AblationValue.Parse),
                Positions = TaskInputs.ParseList(parse.GetValue(positions), Methodology.PositionChoices.Parse),
                Sets = TaskInputs.ParseList(parse.GetValue(sets), Methodology.Sets.Parse),
                Direction = Methodology.Directions.Parse(parse.GetValue(direction)!),
            };
            var methodologies = RobustnessReport.Methodologies(grid, choice, task.PaperMean);
            foreach (var m in methodologies) choice.For(m.Component); // a clear error before loading anything
            var requested = parse.GetValue(metric) is string name ? MetricKind.Parse(name) : (MetricKind?)null;
            var (loaded, parts) = shared.Load(parse, task);
            using var _ = loaded;
            var model = loaded.Model;
            var rankBy = requested ?? (parts[0].HasTokenAnswers ? MetricKind.LogitDiffRecovered : MetricKind.Parse(task.PaperMetric));
            var metrics = rankBy == MetricKind.LogitDiffRecovered ? new[] { rankBy, MetricKind.LogitDiffRecoveredOfMeans } : new[] { rankBy };
            using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
            var request = shared.Request(parse, model, task, parts, choice, methodologies, metrics, progress) with
            {
                Shard = shard, ModelLabel = new ModelLabel(loaded.DisplayName, loaded.RandomWeights is not null),
            };
            var plan = EvaluationPlan.Of(request, choice.Name, loaded.DisplayName);
            var result = Evaluator.RunWithBaseline(request);
            progress.Dispose();
            var render = new Render(parse.GetValue(shared.Json), parse.GetValue(shared.Seed), rankBy.Label);
            if (shard is not null)
            {
                shared.WritePart(parse, "report", shard, request, plan, result, loaded, render);
                return 0;
            }
            var outputs = Outputs(render, plan, result);
            shared.WriteCsv(parse, outputs);
            parse.InvocationConfiguration.Output.Write(outputs.Stdout);
            return 0;
        });
        return cmd;
    }

    /// <summary>How report shows its result: JSON or text, the bootstrap's seed, the metric it ranks by.</summary>
    public sealed record Render(bool Json, int Seed, string RankBy);

    /// <summary>What report prints and writes (from one run, or merged from the parts of a sharded one).</summary>
    public static VerbOutputs Outputs(Render render, EvaluationPlan plan, EvaluationResult result)
    {
        var methodologies = plan.Methodologies.Select(m => m.Checked()).ToArray();
        var report = RobustnessReport.Build(plan.Task, plan.Circuit, plan.Model, MetricKind.Parse(render.RankBy), result, methodologies, render.Seed,
            randomWeights: plan.RandomWeights);
        string Json() => JsonSerializer.Serialize(new ReportJson(report.Task, report.Circuit, report.Model, report.Metric.Label, report.Prompts, report.FullModelMedian,
            report.Faithfulness.Select(EntryJson.Of).ToArray(), report.CircuitAblated.Select(EntryJson.Of).ToArray(), report.Sensitivity, report.HighestVsLowest,
            report.RandomWeights),
            EvaluationExport.JsonOptions);
        // Names from circuit files may hold anything: each text line escaped.
        return new VerbOutputs(render.Json ? Json() + Environment.NewLine : string.Join('\n', report.ToText().Split('\n').Select(Util.ControlCharacters.Escape)), Json, () => EvaluationExport.RowsCsv(result.Rows));
    }
}
