using System.CommandLine;
using Workbook.Progress;
using Workbook.Curves;
using Workbook.Util;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook card</c>: one page on how robust a circuit's faithfulness claim is (HTML and Markdown).</summary>
public static class CardCommand
{
    public static Command Build()
    {
        var shared = new EvaluationOptions();
        var markdown = new Option<string?>("--md") { Description = "Write the card as Markdown to this file." };
        var html = new Option<string?>("--html") { Description = "Write the card as a standalone HTML page (with its figures) to this file." };
        var points = new Option<int>("--points") { Description = "Log-spaced circuit sizes of the CPR/CMD curves (plus the circuit's own size).", DefaultValueFactory = _ => 10 }
            .Within(2, CurveGrid.MaxPoints);
        var cmd = new Command("card", "A circuit robustness card: size, faithfulness per methodology with intervals, CPR/CMD, worst prompts and a verdict.")
        {
            markdown, html, points,
        };
        shared.AddTo(cmd);
        cmd.SetAction(parse =>
        {
            if (shared.ParseShard(parse) is not null) throw new ArgumentException("card does not run sharded; use `workbook report --shard` for the grid.");
            if (parse.GetValue(shared.Csv) is not null) throw new ArgumentException("card writes --md and --html; use `workbook report --csv` for per-prompt rows.");
            var (task, choice) = shared.TaskAndCircuit(parse);
            var (loaded, parts) = shared.Load(parse, task);
            using var _ = loaded;
            using var progress = ProgressPrinter.ForStandardError(parse.InvocationConfiguration.Error);
            var card = RobustnessCards.Compute(new CardRequest
            {
                Model = loaded.Model, Task = task, Parts = parts, Circuit = choice, Points = parse.GetValue(points),
                BatchSize = parse.GetValue(shared.BatchSize) ?? 50, Seed = parse.GetValue(shared.Seed),
                Progress = progress,
            });
            var text = card.ToMarkdown();
            var files = new List<(string, string)>();
            if (parse.GetValue(markdown) is string md) files.Add((md, text));
            if (parse.GetValue(html) is string h) files.Add((h, card.ToHtml()));
            if (files.Count > 0) AtomicFile.WriteAllTexts(files);
            parse.InvocationConfiguration.Output.Write(string.Join('\n', text.Split('\n').Select(ControlCharacters.Escape)));
            return 0;
        });
        return cmd;
    }

}
