using System.CommandLine;
using System.Globalization;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook eval</c>: a circuit's per-prompt faithfulness under one methodology, with a summary.</summary>
public static class EvalCommand
{
    public static Command Build()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var tf32 = CommonOptions.AllowTf32();
        var json = CommonOptions.Json();
        var task = TaskInputs.Task();
        var circuit = TaskInputs.Circuit();
        var component = new Option<string?>("--component") { Description = "node or edge (default: the circuit's own; edge for a family)." };
        var ablation = new Option<string>("--ablation") { Description = "resample, zero, mean-clean, mean-corrupt, mean-both or mean-batch.", DefaultValueFactory = _ => "resample" };
        var positions = new Option<string>("--positions") { Description = "specific (the circuit's token positions) or all.", DefaultValueFactory = _ => "specific" };
        var direction = new Option<string>("--direction") { Description = "ablate-clean (run clean, patch from corrupt) or restore-corrupt.", DefaultValueFactory = _ => "ablate-clean" };
        var set = new Option<string>("--set") { Description = "complement (keep the circuit, ablate the rest) or circuit (ablate the circuit).", DefaultValueFactory = _ => "complement" };
        var metric = new Option<string?>("--metric") { Description = $"Metric(s), comma-separated: {string.Join(", ", MetricNames.All)}. Default: the task's." };
        var prompts = TaskInputs.Prompts();
        var batchSize = TaskInputs.BatchSize();
        var seed = TaskInputs.Seed();
        var dataset = TaskInputs.Dataset();
        var csv = TaskInputs.Csv();
        var cmd = new Command("eval", "Evaluate a circuit on a task under one ablation methodology: per-prompt values and their summary.")
        {
            model, task, circuit, component, ablation, positions, direction, set, metric, prompts, batchSize, seed, dataset, csv, device, tf32, json,
        };
        cmd.SetAction(parse =>
        {
            Devices.AllowTf32 = parse.GetValue(tf32);
            var taskDef = KnownTasks.Get(parse.GetValue(task)!);
            var choice = CircuitChoice.Parse(parse.GetValue(circuit) ?? taskDef.PaperCircuit);
            var comp = parse.GetValue(component) is string c ? TaskInputs.ParseComponent(c)
                : choice.Components.Contains(Component.Edge) ? Component.Edge : Component.Node;
            choice.For(comp); // a clear error before loading anything
            var methodology = new Methodology
            {
                Component = comp, Granularity = comp == Component.Edge ? choice.EdgeGranularity : Granularity.QkvSeparate,
                Value = TaskInputs.ParseAblation(parse.GetValue(ablation)!), Positions = TaskInputs.ParsePositions(parse.GetValue(positions)!),
                Direction = TaskInputs.ParseDirection(parse.GetValue(direction)!), Ablate = TaskInputs.ParseSet(parse.GetValue(set)!),
            };
            var metrics = TaskInputs.ParseList(parse.GetValue(metric) ?? taskDef.PaperMetric, MetricNames.Parse)!;
            using var m = TaskInputs.LoadModel(parse.GetValue(model)!, parse.GetValue(device)!);
            var parts = TaskInputs.Prepare(taskDef, m, parse.GetValue(dataset), parse.GetValue(seed), parse.GetValue(prompts));
            var error = parse.InvocationConfiguration.Error;
            var rows = Evaluator.Run(new EvaluationRequest
            {
                Model = m, Task = taskDef, Parts = parts, Circuit = choice, Methodologies = new[] { methodology }, Metrics = metrics,
                BatchSize = parse.GetValue(batchSize), Progress = new TaskInputs.ConsoleProgress(error),
            });
            var summaries = Summaries.ByMethodology(rows, parse.GetValue(seed));
            if (parse.GetValue(csv) is string path) EvaluationExport.WriteFile(path, EvaluationExport.RowsCsv(rows));
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(EvaluationExport.Json(summaries, rows));
                return 0;
            }
            output.WriteLine($"{taskDef.Name}, circuit {choice.Name}, {methodology.Label}, {parts.Sum(p => p.Count)} prompts in {parts.Count} part(s)");
            foreach (var s in summaries)
            {
                var v = s.Values;
                string F(double x) => x.ToString("G5", CultureInfo.InvariantCulture);
                output.WriteLine($"{s.Metric.Name()}: mean {F(v.Mean)} (95% CI {F(v.MeanCi.Low)}..{F(v.MeanCi.High)}), median {F(v.Median)} (95% CI {F(v.MedianCi.Low)}..{F(v.MedianCi.High)}), " +
                    $"IQR {F(v.Q1)}..{F(v.Q3)}, 5%..95% {F(v.P5)}..{F(v.P95)}" +
                    (s.Metric.IsRecoveredPercent() ? $", within 80-120%: {(100 * v.ShareWithin80To120).ToString("F0", CultureInfo.InvariantCulture)}%" : "") +
                    (v.NonFinite > 0 ? $", {v.NonFinite} non-finite" : ""));
            }
            return 0;
        });
        return cmd;
    }
}
