using System.CommandLine;
using System.Text.Json;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;

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
        IReadOnlyList<EntryJson> Faithfulness, IReadOnlyList<EntryJson> CircuitAblated, Sensitivity Sensitivity, PairedComparison? HighestVsLowest);

    public static Command Build()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var tf32 = CommonOptions.AllowTf32();
        var json = CommonOptions.Json();
        var task = TaskInputs.Task();
        var circuit = TaskInputs.Circuit();
        var metric = new Option<string?>("--metric") { Description = "The metric to rank by (default: logit-diff-recovered when the task has answer tokens, else the task's metric)." };
        var components = new Option<string?>("--components") { Description = "Components to vary, comma-separated (default: those the circuit has)." };
        var values = new Option<string?>("--values") { Description = "Ablation values to vary, comma-separated (default: resample, the task's mean, zero)." };
        var positions = new Option<string?>("--positions") { Description = "Token positions to vary: specific,all (default: both when the circuit has positions)." };
        var sets = new Option<string?>("--sets") { Description = "Ablated sets to vary: complement,circuit (default: both)." };
        var direction = new Option<string>("--direction") { Description = "ablate-clean or restore-corrupt.", DefaultValueFactory = _ => "ablate-clean" };
        var prompts = TaskInputs.Prompts();
        var batchSize = TaskInputs.BatchSize();
        var seed = TaskInputs.Seed();
        var dataset = TaskInputs.Dataset();
        var csv = TaskInputs.Csv();
        var cmd = new Command("report", "Evaluate a circuit over the grid of ablation methodologies and show how much the verdict depends on them.")
        {
            model, task, circuit, metric, components, values, positions, sets, direction, prompts, batchSize, seed, dataset, csv, device, tf32, json,
        };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            var taskDef = KnownTasks.Get(parse.GetValue(task)!);
            var choice = CircuitChoice.Parse(parse.GetValue(circuit) ?? taskDef.PaperCircuit);
            var grid = new ReportGrid
            {
                Components = TaskInputs.ParseList(parse.GetValue(components), TaskInputs.ParseComponent),
                Values = TaskInputs.ParseList(parse.GetValue(values), TaskInputs.ParseAblation),
                Positions = TaskInputs.ParseList(parse.GetValue(positions), TaskInputs.ParsePositions),
                Sets = TaskInputs.ParseList(parse.GetValue(sets), TaskInputs.ParseSet),
                Direction = TaskInputs.ParseDirection(parse.GetValue(direction)!),
            };
            var methodologies = RobustnessReport.Methodologies(grid, choice, taskDef.PaperMean);
            foreach (var m2 in methodologies) choice.For(m2.Component);
            using var m = TaskInputs.LoadModel(parse.GetValue(model)!, parse.GetValue(device)!);
            var parts = TaskInputs.Prepare(taskDef, m, parse.GetValue(dataset), parse.GetValue(seed), parse.GetValue(prompts));
            var rankBy = parse.GetValue(metric) is string name ? MetricNames.Parse(name)
                : parts[0].HasTokenAnswers ? MetricKind.LogitDiffRecovered : MetricNames.Parse(taskDef.PaperMetric);
            var metrics = rankBy == MetricKind.LogitDiffRecovered ? new[] { rankBy, MetricKind.LogitDiffRecoveredOfMeans } : new[] { rankBy };
            var result = Evaluator.RunWithBaseline(new EvaluationRequest
            {
                Model = m, Task = taskDef, Parts = parts, Circuit = choice, Methodologies = methodologies, Metrics = metrics,
                BatchSize = parse.GetValue(batchSize), Progress = new TaskInputs.ConsoleProgress(parse.InvocationConfiguration.Error),
            });
            var report = RobustnessReport.Build(taskDef.Name, choice.Name, m.Config.Name, rankBy, result, methodologies, parse.GetValue(seed));
            if (parse.GetValue(csv) is string path) EvaluationExport.WriteFile(path, EvaluationExport.RowsCsv(result.Rows));
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
                output.WriteLine(JsonSerializer.Serialize(new ReportJson(report.Task, report.Circuit, report.Model, report.Metric.Name(), report.Prompts, report.FullModelMedian,
                    report.Faithfulness.Select(EntryJson.Of).ToArray(), report.CircuitAblated.Select(EntryJson.Of).ToArray(), report.Sensitivity, report.HighestVsLowest),
                    EvaluationExport.JsonOptions));
            else output.Write(report.ToText());
            return 0;
        });
        return cmd;
    }
}
