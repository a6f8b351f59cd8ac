using System.CommandLine;
using System.Text.Json;
using Workbook.Discovery;
using Workbook.Sharding;
using Workbook.Util;

namespace Workbook.Cli.Commands;

/// <summary>
/// <c>workbook merge PARTS... [--out FILE] [--csv FILE]</c>: combines the part files of a sharded eval, report, discover
/// or roc run into exactly what the unsharded run prints and writes. Parts that overlap, are missing, come from another
/// run or were damaged are refused, with one line naming the files, before anything is written.
/// </summary>
public static class MergeCommand
{
    public static Command Build()
    {
        var parts = new Argument<string[]>("parts") { Description = "The part files of every shard of one run, in any order.", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Write the run's JSON document to this file (what the run prints with --json; for discover, its --out scores file).",
        };
        var csv = new Option<string?>("--csv") { Description = "Write the per-prompt rows to this CSV file (eval and report), as the run's --csv would." };
        var cmd = new Command("merge", "Combine the part files of a sharded run (--shard K/N) into the output of the unsharded run: print what it prints, write --out/--csv.")
        {
            parts, output, csv,
        };
        cmd.SetAction(parse =>
        {
            string? outPath = parse.GetValue(output), csvPath = parse.GetValue(csv);
            if (outPath is not null && csvPath is not null && Path.GetFullPath(outPath) == Path.GetFullPath(csvPath))
                throw new ArgumentException($"--out and --csv both name '{outPath}'.");
            if (outPath is not null) ShardOptions.CheckOutputPath("--out", outPath);
            if (csvPath is not null) ShardOptions.CheckOutputPath("--csv", csvPath);
            var inputs = parse.GetValue(parts)!.Select(f => new ShardPartInput(f, ShardPartFile.ReadFile(f))).ToList();
            var ordered = ShardSet.Check(inputs);
            string command = ordered[0].Part.Command;
            var outputs = command switch
            {
                "eval" => Evaluation<EvalCommand.Render>(ordered, (render, plan, result) => EvalCommand.Outputs(render, plan, result.Rows)),
                "report" => Evaluation<ReportCommand.Render>(ordered, ReportCommand.Outputs),
                "discover" => Discovery<DiscoverCommand.Render>(ordered, DiscoverCommand.Outputs),
                "roc" => Discovery<RocCommand.Render>(ordered, (render, result) =>
                {
                    var (edges, task, description) = RocCommand.Scores(result);
                    return RocCommand.Outputs(render, edges, task, description);
                }),
                _ => throw new ArgumentException($"'{ordered[0].File}' is a part of `{command}`, which this workbook cannot merge (eval, report, discover, roc)."),
            };
            if (csvPath is not null && outputs.Csv is null) throw new ArgumentException($"--csv: `{command}` has no per-prompt rows; use --out for its JSON.");
            var files = new List<(string Path, string Text)>();
            if (outPath is not null) files.Add((outPath, outputs.Json() + "\n"));
            if (csvPath is not null) files.Add((csvPath, outputs.Csv!()));
            AtomicFile.WriteAllTexts(files);
            parse.InvocationConfiguration.Output.Write(outputs.Stdout);
            return 0;
        });
        return cmd;
    }

    static VerbOutputs Evaluation<TRender>(IReadOnlyList<ShardPartInput> parts, Func<TRender, EvaluationPlan, Workbook.Evaluation.EvaluationResult, VerbOutputs> outputs)
    {
        var payloads = Payloads<EvaluationPart<TRender>>(parts, p => p.Units.Select(u => u.Index));
        var first = payloads[0];
        return outputs(first.Render, first.Plan, EvaluationShards.Combine(first.Plan, payloads.SelectMany(p => p.Units).ToList()));
    }

    static VerbOutputs Discovery<TRender>(IReadOnlyList<ShardPartInput> parts, Func<TRender, DiscoveryResult, VerbOutputs> outputs)
    {
        var payloads = Payloads<DiscoveryPart<TRender>>(parts, p => p.Units.Select(u => u.Index));
        var first = payloads[0];
        return outputs(first.Render, CircuitDiscovery.Combine(first.Plan, payloads.SelectMany(p => p.Units).ToList()));
    }

    /// <summary>
    /// Each part's results, checked to hold exactly the units its shard number gives it, and the same plan and rendering
    /// as the first part (they follow from options every part shares; a part made by another version might differ).
    /// </summary>
    static IReadOnlyList<T> Payloads<T>(IReadOnlyList<ShardPartInput> parts, Func<T, IEnumerable<int>> units)
    {
        var result = new List<T>();
        string? plan = null, render = null;
        foreach (var (file, part) in parts)
        {
            T payload;
            try
            {
                payload = ShardPartFile.FromElement<T>(part.Result, "result");
            }
            catch (Exception e) when (e is JsonException or FormatException or NotSupportedException)
            {
                throw new FormatException($"'{file}' is not a usable workbook part file: its result does not read as a `{part.Command}` part ({e.Message}).", e);
            }
            var have = units(payload).ToArray();
            if (!have.SequenceEqual(Enumerable.Range(part.Units.Start, part.Units.Count)))
                throw new ArgumentException($"'{file}' says it holds {part.Units} but its results are for {have.Length} other units; it is damaged.");
            string Raw(string name) => part.Result.TryGetProperty(name, out var v) ? v.GetRawText() : "";
            if (plan is not null && (Raw("plan") != plan || Raw("render") != render))
                throw new ArgumentException($"'{file}' and '{parts[0].File}' are parts of different runs: their plans differ.");
            (plan, render) = (Raw("plan"), Raw("render"));
            result.Add(payload);
        }
        return result;
    }
}
