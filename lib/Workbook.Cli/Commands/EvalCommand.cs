using System.CommandLine;
using System.Globalization;
using Workbook.Evaluation;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Progress;
using Workbook.Sharding;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook eval</c>: a circuit's per-prompt faithfulness under one methodology, with a summary.</summary>
public static class EvalCommand
{
    public static Command Build()
    {
        var shared = new EvaluationOptions();
        var component = new Option<string?>("--component") { Description = "node or edge (default: the circuit's own; edge for a family)." };
        var ablation = new Option<string>("--ablation") { Description = "resample, zero, mean-clean, mean-corrupt, mean-both or mean-batch.", DefaultValueFactory = _ => "resample" };
        var positions = new Option<string>("--positions") { Description = "specific (the circuit's token positions) or all.", DefaultValueFactory = _ => "specific" };
        var direction = new Option<string>("--direction") { Description = "ablate-clean (run clean, patch from corrupt) or restore-corrupt.", DefaultValueFactory = _ => "ablate-clean" };
        var set = new Option<string>("--set") { Description = "complement (keep the circuit, ablate the rest) or circuit (ablate the circuit).", DefaultValueFactory = _ => "complement" };
        var metric = new Option<string?>("--metric") { Description = $"Metric(s), comma-separated: {string.Join(", ", MetricNames.All)}. Default: the task's." };
        var cmd = new Command("eval", "Evaluate a circuit on a task under one ablation methodology: per-prompt values and their summary.")
        {
            component, ablation, positions, direction, set, metric,
        };
        shared.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var shard = shared.ParseShard(parse);
            var (task, choice) = shared.TaskAndCircuit(parse);
            var comp = parse.GetValue(component) is string c ? TaskInputs.ParseComponent(c)
                : choice.Components.Contains(Component.Edge) ? Component.Edge : Component.Node;
            choice.For(comp); // a clear error before loading anything
            var methodology = new Methodology
            {
                Component = comp, Granularity = comp == Component.Edge ? choice.EdgeGranularity : Granularity.QkvSeparate,
                Value = TaskInputs.ParseAblation(parse.GetValue(ablation)!), Positions = TaskInputs.ParsePositions(parse.GetValue(positions)!),
                Direction = TaskInputs.ParseDirection(parse.GetValue(direction)!), Ablate = TaskInputs.ParseSet(parse.GetValue(set)!),
            };
            var metrics = TaskInputs.ParseList(parse.GetValue(metric) ?? task.PaperMetric, MetricNames.Parse)!;
            var (loaded, parts) = shared.Load(parse, task);
            using var _ = loaded;
            var model = loaded.Model;
            using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
            var request = shared.Request(parse, model, task, parts, choice, new[] { methodology }, metrics, progress) with
            {
                Shard = shard, ModelLabel = new ModelLabel(loaded.DisplayName, loaded.RandomWeights is not null),
            };
            var plan = EvaluationPlan.Of(request, choice.Name, loaded.DisplayName);
            var result = Evaluator.RunWithBaseline(request);
            progress.Dispose();
            var render = new Render(parse.GetValue(shared.Json), parse.GetValue(shared.Seed));
            if (shard is not null)
            {
                shared.WritePart(parse, "eval", shard, request, plan, result, loaded, render);
                return 0;
            }
            var outputs = Outputs(render, plan, result.Rows);
            shared.WriteCsv(parse, outputs);
            parse.InvocationConfiguration.Output.Write(outputs.Stdout);
            return 0;
        });
        return cmd;
    }

    /// <summary>How eval shows its result: JSON or text, and the bootstrap's seed.</summary>
    public sealed record Render(bool Json, int Seed);

    /// <summary>What eval prints and writes for its rows (from one run, or merged from the parts of a sharded one).</summary>
    public static VerbOutputs Outputs(Render render, EvaluationPlan plan, IReadOnlyList<EvaluationRow> rows)
    {
        var summaries = Summaries.ByMethodology(rows, render.Seed);
        string Json() => EvaluationExport.Json(summaries, rows);
        var output = new StringWriter();
        if (render.Json) output.WriteLine(Json());
        else
        {
            output.WriteLine($"{plan.Task}, circuit {Util.ControlCharacters.Escape(plan.Circuit)}, {plan.Methodologies[0].Label}, {plan.Parts.Sum(p => p.Prompts)} prompts in {plan.Parts.Count} part(s)");
            foreach (var s in summaries)
            {
                var v = s.Values;
                string F(double x) => x.ToString("G5", CultureInfo.InvariantCulture);
                output.WriteLine($"{s.Metric.Name()}: mean {F(v.Mean)} (95% CI {F(v.MeanCi.Low)}..{F(v.MeanCi.High)}), median {F(v.Median)} (95% CI {F(v.MedianCi.Low)}..{F(v.MedianCi.High)}), " +
                    $"IQR {F(v.Q1)}..{F(v.Q3)}, 5%..95% {F(v.P5)}..{F(v.P95)}" +
                    (s.Metric.IsRecoveredPercent() ? $", within 80-120%: {(100 * v.ShareWithin80To120).ToString("F0", CultureInfo.InvariantCulture)}%" : "") +
                    (v.NonFinite > 0 ? $", {v.NonFinite} non-finite" : ""));
            }
        }
        return new VerbOutputs(output.ToString(), Json, () => EvaluationExport.RowsCsv(rows));
    }
}
