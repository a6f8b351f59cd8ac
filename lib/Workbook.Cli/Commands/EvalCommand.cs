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
        var ablation = TaskInputs.Ablation("--ablation", "The ablation value (default resample).");
        var positions = new Option<string?>("--positions") { Description = "specific (the circuit's token positions, the default) or all." };
        var direction = new Option<string?>("--direction") { Description = "ablate-clean (run clean, patch from corrupt; the default) or restore-corrupt." };
        var set = new Option<string?>("--set") { Description = "complement (keep the circuit, ablate the rest; the default) or circuit (ablate the circuit)." };
        var methodologyLabel = new Option<string?>("--methodology")
        {
            Description = "A whole methodology as exports and reports spell it, e.g. node/specific/mean-corrupt/ablate-clean/complement " +
                          "(then /heads, /prefix-N); instead of --component, --ablation, --positions, --direction and --set.",
        };
        var metric = TaskInputs.Metric("Metric(s), comma-separated (default: the task's).");
        var cmd = new Command("eval", "Evaluate a circuit on a task under one ablation methodology: per-prompt values and their summary.")
        {
            component, ablation, positions, direction, set, methodologyLabel, metric,
        };
        shared.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            var shard = shared.ParseShard(parse);
            var (task, choice) = shared.TaskAndCircuit(parse);
            Methodology methodology;
            if (parse.GetValue(methodologyLabel) is string label)
            {
                var spelledOut = new Option[] { component, ablation, positions, direction, set }.Where(o => parse.GetResult(o) is not null).Select(o => o.Name).ToList();
                if (spelledOut.Count > 0)
                    throw new ArgumentException($"--methodology gives the whole methodology; drop {string.Join(", ", spelledOut)} or spell it in the label.");
                methodology = Methodology.Parse(label);
                choice.For(methodology.Component);
            }
            else
            {
                var comp = parse.GetValue(component) is string c ? Methodology.Components.Parse(c)
                    : choice.Components.Contains(Component.Edge) ? Component.Edge : Component.Node;
                choice.For(comp); // a clear error before loading anything
                methodology = new Methodology
                {
                    Component = comp, Granularity = comp == Component.Edge ? choice.EdgeGranularity : Granularity.QkvSeparate,
                    Value = AblationValue.Parse(parse.GetValue(ablation) ?? "resample"),
                    Positions = Methodology.PositionChoices.Parse(parse.GetValue(positions) ?? "specific"),
                    Direction = Methodology.Directions.Parse(parse.GetValue(direction) ?? "ablate-clean"),
                    Ablate = Methodology.Sets.Parse(parse.GetValue(set) ?? "complement"),
                };
            }
            var metrics = TaskInputs.ParseList(parse.GetValue(metric) ?? task.PaperMetric, MetricKind.Parse)!;
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
                output.WriteLine($"{s.Metric.Label}: mean {F(v.Mean)} (95% CI {F(v.MeanCi.Low)}..{F(v.MeanCi.High)}), median {F(v.Median)} (95% CI {F(v.MedianCi.Low)}..{F(v.MedianCi.High)}), " +
                    $"IQR {F(v.Q1)}..{F(v.Q3)}, 5%..95% {F(v.P5)}..{F(v.P95)}" +
                    (s.Metric.IsRecoveredPercent ? $", within 80-120%: {(100 * v.ShareWithin80To120).ToString("F0", CultureInfo.InvariantCulture)}%" : "") +
                    (v.NonFinite > 0 ? $", {v.NonFinite} non-finite" : ""));
            }
        }
        return new VerbOutputs(output.ToString(), Json, () => EvaluationExport.RowsCsv(rows));
    }
}
