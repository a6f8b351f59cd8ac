using System.CommandLine;
using Workbook.Embedded;

namespace Workbook.Cli.Commands;

/// <summary>
/// <c>workbook train-toy NAME</c>: retrains one of the built-in toy models (toy-ioi, toy-docstring, toy-sports) from
/// scratch and writes its checkpoint folder, circuits and model card; <c>--analyse-only</c> keeps the weights.
/// </summary>
public static class TrainToyCommand
{
    static readonly string[] Names = { ToyIoi.Alias, ToyDocstring.Alias, ToySports.Alias };

    public static Command Build()
    {
        var name = new Argument<string>("name") { Description = $"The toy model: {string.Join(", ", Names)}." };
        var output = new Option<string?>("--out") { Description = "Folder to write, replaced when complete (default: data/models/NAME)." };
        var steps = new Option<int?>("--steps") { Description = "Training steps (default: the recipe's)." };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of the initialisation and of the training data (default: the recipe's)." };
        var threads = new Option<int>("--threads") { Description = "CPU threads (1 makes the weights reproducible).", DefaultValueFactory = _ => 1 };
        var analyseOnly = new Option<bool>("--analyse-only") { Description = "Keep the weights in --out and only redo the evaluation, circuit search and model card." };
        var edgesOnly = new Option<bool>("--edges-only") { Description = "toy-ioi with --analyse-only: keep the head analysis and node circuit of evaluation.json, redo only the edge search and grid." };
        var nodeTau = new Option<double?>("--node-tau") { Description = "τ of the node circuit search, in points of percent (toy-docstring, toy-sports; default: the recipe's)." };
        var edgeTau = new Option<double?>("--edge-tau") { Description = "τ of the edge circuit search, in points of percent (default: the recipe's)." };
        var cmd = new Command("train-toy", "Train a built-in toy model (toy-ioi, toy-docstring, toy-sports) from scratch and write its checkpoint, tokenizer, circuits and model card.")
        {
            name, output, steps, seed, threads, analyseOnly, edgesOnly, nodeTau, edgeTau,
        };
        cmd.SetAction(parse =>
        {
            string model = parse.GetValue(name)!;
            if (!Names.Contains(model, StringComparer.Ordinal))
                throw new ArgumentException($"Unknown toy model '{model}'; train-toy knows {string.Join(", ", Names)}.");
            int t = parse.GetValue(threads);
            if (t < 1) throw new ArgumentException($"--threads must be at least 1, got {t}.");
            if (parse.GetValue(steps) is < 0) throw new ArgumentException($"--steps must not be negative, got {parse.GetValue(steps)}.");
            string folder = parse.GetValue(output) ?? $"data/models/{model}";
            var log = new LineProgress(parse.InvocationConfiguration.Output);
            bool reanalyse = parse.GetValue(analyseOnly);
            if (parse.GetValue(edgesOnly) && (!reanalyse || model != ToyIoi.Alias)) throw new ArgumentException("--edges-only applies to toy-ioi with --analyse-only.");
            foreach (var tau in new[] { parse.GetValue(nodeTau), parse.GetValue(edgeTau) })
                if (tau is double x && (x < 0 || !double.IsFinite(x))) throw new ArgumentException($"τ must be a finite non-negative number of points, got {x}.");
            ToySearchThresholds Thresholds(ToySearchThresholds recipe) =>
                new(parse.GetValue(nodeTau) ?? recipe.NodeTau, parse.GetValue(edgeTau) ?? recipe.EdgeTau);
            switch (model)
            {
                case ToyIoi.Alias:
                {
                    var d = new ToyIoiTrainingOptions();
                    var o = d with { Steps = parse.GetValue(steps) ?? d.Steps, Seed = parse.GetValue(seed) ?? d.Seed, Threads = t };
                    double tau = parse.GetValue(edgeTau) ?? ToyIoiBuild.EdgeSearchTau;
                    if (reanalyse && parse.GetValue(edgesOnly)) ToyIoiBuild.ReanalyseEdges(folder, log, tau);
                    else if (reanalyse) ToyIoiBuild.Reanalyse(folder, log, tau);
                    else ToyIoiBuild.TrainAndSave(folder, o, log, edgeTau: tau);
                    break;
                }
                case ToyDocstring.Alias:
                {
                    var d = new ToyDocstringTrainingOptions();
                    var o = d with { Steps = parse.GetValue(steps) ?? d.Steps, Seed = parse.GetValue(seed) ?? d.Seed, Threads = t };
                    var tau = Thresholds(ToyDocstringBuild.Tau);
                    if (reanalyse) ToyDocstringBuild.Reanalyse(folder, log, tau);
                    else ToyDocstringBuild.TrainAndSave(folder, o, log, tau: tau);
                    break;
                }
                default:
                {
                    var d = new ToySportsTrainingOptions();
                    var o = d with { Steps = parse.GetValue(steps) ?? d.Steps, Seed = parse.GetValue(seed) ?? d.Seed, Threads = t };
                    var tau = Thresholds(ToySportsBuild.Tau);
                    if (reanalyse) ToySportsBuild.Reanalyse(folder, log, tau);
                    else ToySportsBuild.TrainAndSave(folder, o, log, tau: tau);
                    break;
                }
            }
            return 0;
        });
        return cmd;
    }

    internal sealed class LineProgress(TextWriter writer) : IProgress<string>
    {
        public void Report(string value)
        {
            writer.WriteLine(value);
            writer.Flush();
        }
    }
}
