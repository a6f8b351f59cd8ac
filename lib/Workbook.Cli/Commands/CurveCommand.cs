using System.CommandLine;
using Workbook.Progress;
using Workbook.Checkpoints;
using Workbook.Curves;
using Workbook.Discovery;
using Workbook.Figures;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Util;

namespace Workbook.Cli.Commands;

/// <summary>
/// <c>workbook curve</c>: faithfulness of the top-k circuits of an edge scoring over a grid of edge counts, under the
/// paper's methodology choices, with MIB's CPR and CMD.
/// </summary>
public static class CurveCommand
{
    public static Command Build()
    {
        var discovery = new DiscoveryOptions();
        discovery.Algorithm.Required = false;
        var scoresFile = new Option<string?>("--scores") { Description = "A scores file written by `workbook discover --out` (for --model and --task). Without it, give --algorithm to discover first." };
        var methodologies = new Option<string>("--methodologies")
        {
            Description = "paper: node/edge x resample/mean-corrupt (the paper's choices; specific = all positions for score circuits); " +
                          "or one methodology as component/ablation value, e.g. edge/resample or node/mean-corrupt (values: " + AblationValue.Vocabulary.Syntaxes + ").",
            DefaultValueFactory = _ => "paper",
        };
        var points = new Option<int>("--points") { Description = "Log-spaced edge counts from 1 to every edge.", DefaultValueFactory = _ => 12 }
            .Within(2, CurveGrid.MaxPoints);
        var grid = new Option<string>("--grid") { Description = "log (--points counts spaced evenly in log) or mib (MIB's 0.1%..100%).", DefaultValueFactory = _ => "log" };
        var metric = TaskInputs.Metric("The metric m of f = (m(C) - m(empty)) / (m(model) - m(empty)). Default: logit-diff (mse for real-valued tasks).");
        var csv = TaskInputs.Csv();
        var outJson = new Option<string?>("--out") { Description = "Write the curves (JSON) to this file." };
        var html = new Option<string?>("--html") { Description = "Write the figure as a standalone HTML page to this file." };
        var json = CommonOptions.Json();
        var cmd = new Command("curve", "Faithfulness curves: top-k circuits of an edge scoring over a log grid of edge counts, with MIB's CPR and CMD.")
        {
            scoresFile, methodologies, points, grid, metric, csv, outJson, html, json,
        };
        foreach (var o in discovery.All) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(discovery.Sharding.Shard) is not null) throw new ArgumentException("curve does not run sharded; discover with --shard, merge, then pass --scores.");
            var task = KnownTasks.Get(parse.GetValue(discovery.Task)!);
            var chosen = ParseMethodologies(parse.GetValue(methodologies)!);
            var requested = parse.GetValue(metric) is string mt ? MetricKind.Parse(mt) : (MetricKind?)null;
            string gridName = parse.GetValue(grid)!.ToLowerInvariant();
            if (gridName is not ("log" or "mib")) throw new ArgumentException($"--grid must be log or mib, got '{gridName}'.");
            string? path = parse.GetValue(scoresFile);
            var file = path is not null ? ScoresJson.ReadFile(path) : null;
            if (file is not null && parse.GetResult(discovery.Algorithm) is not null) throw new ArgumentException("Give --scores or --algorithm, not both.");
            if (file is null && parse.GetResult(discovery.Algorithm) is null) throw new ArgumentException("Give --scores FILE, or --algorithm to discover the scores first.");
            if (file is not null && !string.Equals(file.Task, task.Name, StringComparison.Ordinal))
                throw new ArgumentException($"The scores are for task '{file.Task}', not '{task.Name}'.");

            // One model and one set of prompts for the discovery and the curves.
            using var loaded = discovery.LoadModel(parse);
            var parts = TaskInputs.Prepare(task, loaded, parse.GetValue(discovery.Dataset), parse.GetValue(discovery.Seed), parse.GetValue(discovery.Prompts));
            EdgeScores? discovered = file is null ? discovery.Run(parse, "curve", 0, loaded, parts)!.Scores : null;
            using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
            var graph = CircuitDiscovery.SearchGraph(loaded.Model.Config, task, SearchSpace.Edge);
            var scores = discovered ?? new EdgeScores(graph, CurveOutputs.ScoresOnGraph(graph, file!.Edges), new DiscoveryInfo
            {
                Model = file.Model, Task = file.Task, Algorithm = DiscoveryNames.ParseAlgorithm(file.Algorithm), Search = DiscoveryNames.ParseSearch(file.Search),
                Ablation = AblationValue.Resample, Target = DiscoveryNames.ParseTarget(file.Target), Prompts = 0, Seed = 0,
            });
            string description = file is not null
                ? $"{file.Algorithm} scores ({file.Search} search) of {file.Task} on {file.Model}"
                : $"{scores.Info.Algorithm.Name()} scores ({scores.Info.Search.Name()} search) of {scores.Info.Task} on {scores.Info.Model}";
            var curves = FaithfulnessCurves.Compute(new CurveRequest
            {
                Model = loaded.Model, Task = task, Parts = parts, Scores = scores, Methodologies = chosen, Metric = requested,
                Grid = gridName == "mib" ? CurveGrid.Mib(graph.EdgeCount) : CurveGrid.LogSpaced(graph.EdgeCount, parse.GetValue(points)),
                BatchSize = parse.GetValue(discovery.BatchSize) ?? 50, CircuitsPerForward = parse.GetValue(discovery.CircuitsPerForward),
                Progress = progress,
            });
            var figure = CurveOutputs.Figure(curves, $"Faithfulness curves: {description}");
            var files = new List<(string, string)>();
            if (parse.GetValue(csv) is string c) files.Add((c, CurveOutputs.Csv(curves)));
            if (parse.GetValue(outJson) is string o) files.Add((o, CurveOutputs.Json(curves, description) + "\n"));
            if (parse.GetValue(html) is string h) files.Add((h, FigureHtml.Page($"Faithfulness curves: {description}", new[] { figure })));
            if (files.Count > 0) AtomicFile.WriteAllTexts(files);
            parse.InvocationConfiguration.Output.Write(parse.GetValue(json) ? CurveOutputs.Json(curves, description) + "\n"
                : string.Join('\n', CurveOutputs.Text(curves, description).Split('\n').Select(ControlCharacters.Escape)));
            return 0;
        });
        return cmd;
    }

    static IReadOnlyList<Methodology> ParseMethodologies(string text)
    {
        if (string.Equals(text, "paper", StringComparison.OrdinalIgnoreCase)) return FaithfulnessCurves.PaperGrid();
        var parts = text.Split('/');
        if (parts.Length != 2) throw new ArgumentException($"--methodologies: '{text}' is neither 'paper' nor component/ablation (e.g. edge/resample).");
        return new[] { new Methodology { Component = Methodology.Components.Parse(parts[0]), Value = AblationValue.Parse(parts[1]), Positions = TokenPositions.All } };
    }

}
