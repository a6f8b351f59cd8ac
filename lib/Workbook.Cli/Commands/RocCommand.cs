using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Graph;
using Workbook.Evaluation;
using Workbook.Patching;
using Workbook.Tasks;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook roc</c>: the pessimistic ROC curve and its area for edge scores against a ground-truth circuit.</summary>
public static class RocCommand
{
    public static Command Build()
    {
        var scoresFile = new Option<string?>("--scores") { Description = "A scores file written by `workbook discover --out`. Without it, give --model, --task and --algorithm to discover first." };
        var truth = new Option<string?>("--truth") { Description = "Ground-truth edge circuit(s), comma-separated: official names or circuit files. Default: the task's circuit." };
        var json = CommonOptions.Json();
        var discovery = new DiscoveryOptions();
        // With --scores the discovery options are not needed; without it System.CommandLine must not demand them up front.
        discovery.Model.Required = discovery.Task.Required = discovery.Algorithm.Required = false;
        var cmd = new Command("roc", "Compare edge scores with a ground-truth circuit: pessimistic ROC curve (ties count false positives first) and its area.")
        {
            scoresFile, truth, json,
        };
        foreach (var o in discovery.All) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var render = new Render(parse.GetValue(json), parse.GetValue(truth));
            IReadOnlyList<KeyValuePair<string, double>> edges;
            string task, description;
            if (parse.GetValue(scoresFile) is string path)
            {
                if (parse.GetValue(discovery.Sharding.Shard) is not null)
                    throw new ArgumentException("--shard splits the discovery that roc runs; with --scores the scores exist already and there is nothing to split.");
                var file = ScoresJson.ReadFile(path);
                (edges, task, description) = (file.Edges, file.Task, $"{file.Algorithm}, {file.Search} search, {file.Task} on {file.Model}");
            }
            else
            {
                foreach (var required in new[] { discovery.Model, discovery.Task, discovery.Algorithm })
                    if (parse.GetResult(required) is null) throw new ArgumentException($"Give --scores FILE, or {required.Name} (with --model, --task and --algorithm) to discover the scores first.");
                if (discovery.Run(parse, "roc", render) is not { } result) return 0;   // a shard wrote its part
                (edges, task, description) = Scores(result);
            }
            parse.InvocationConfiguration.Output.Write(Outputs(render, edges, task, description).Stdout);
            return 0;
        });
        return cmd;
    }

    /// <summary>How roc shows its result: JSON or text, against which ground truths (--truth; null: the task's circuit).</summary>
    public sealed record Render(bool Json, string? Truths);

    /// <summary>Every edge's score by name, the task, and a description of how the scores were made.</summary>
    public static (IReadOnlyList<KeyValuePair<string, double>> Edges, string Task, string Description) Scores(DiscoveryResult result)
    {
        var s = result.Scores;
        return (s.Graph.Edges.Select(e => new KeyValuePair<string, double>(e.Name, s[e])).ToList(), s.Info.Task,
            $"{s.Info.Algorithm.Name()}, {s.Info.Search.Name()} search, {s.Info.Task} on {s.Info.Model}");
    }

    /// <summary>What roc prints for scores against its ground truths (from one run, or merged from the parts of a sharded one).</summary>
    public static VerbOutputs Outputs(Render render, IReadOnlyList<KeyValuePair<string, double>> edges, string task, string description)
    {
        var truths = TaskInputs.ParseList(render.Truths, x => x) ?? new[] { KnownTasks.Get(task).PaperCircuit };
        var curves = truths.Select(name =>
        {
            var circuit = CircuitChoice.Parse(name).For(Component.Edge);
            if (OfficialCircuits.Exists(name)) CheckSameGraph(edges, OfficialCircuits.Get(name), description);
            return (Name: name, Curve: Roc.Compute(edges, circuit.Edges.Select(e => e.Name).Distinct()));
        }).ToList();

        string Json() => JsonSerializer.Serialize(new
        {
            scores = description,
            edges = edges.Count,
            curves = curves.Select(c => new
            {
                truth = c.Name, positives = c.Curve.Positives, negatives = c.Curve.Negatives, auc = c.Curve.Area,
                tprAtZeroFpr = c.Curve.TruePositiveRateAtZeroFalsePositives,
                points = c.Curve.Points.Select(p => new { fpr = p.FalsePositiveRate, tpr = p.TruePositiveRate, selected = p.Selected }),
            }),
        }, CommonOptions.JsonOptions);
        var output = new StringWriter();
        if (render.Json)
        {
            output.WriteLine(Json());
            return new VerbOutputs(output.ToString(), Json, null);
        }
        string F(double x) => x.ToString("0.000", CultureInfo.InvariantCulture);
        output.WriteLine($"{Util.ControlCharacters.Escape(description)}: {edges.Count} edges");
        foreach (var (name, curve) in curves)
        {
            output.WriteLine($"truth {Util.ControlCharacters.Escape(name)} ({curve.Positives} of {edges.Count} edges): AUC {F(curve.Area)}, TPR at FPR 0: {F(curve.TruePositiveRateAtZeroFalsePositives)}");
            output.WriteLine("  FPR    TPR    edges selected");
            foreach (var p in curve.Points) output.WriteLine($"  {F(p.FalsePositiveRate)}  {F(p.TruePositiveRate)}  {p.Selected}");
        }
        return new VerbOutputs(output.ToString(), Json, null);
    }

    /// <summary>An official circuit names its model: the scores must cover exactly that model's edges.</summary>
    static void CheckSameGraph(IReadOnlyList<KeyValuePair<string, double>> edges, OfficialCircuit official, string scores)
    {
        var graph = ComputationGraph.Factorized(official.Model, official.Circuit.SeparateQkv);
        var names = edges.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
        if (graph.EdgeCount != edges.Count || graph.Edges.Any(e => !names.Contains(e.Name)))
            throw new ArgumentException($"Circuit '{official.Name}' belongs to model '{official.Model.Name}' ({graph.EdgeCount} edges), " +
                $"but the scores ({scores}) cover {edges.Count} edges of another graph.");
    }
}
