using System.CommandLine;
using System.Globalization;
using Workbook.Checkpoints;
using Workbook.Sharding;
using Workbook.Tasks;

namespace Workbook.Cli.Commands;

/// <summary>
/// <c>--shard K/N</c> and <c>--part FILE</c>, shared by eval, report, discover and roc: run the K-th of N slices of the
/// work units and write a part file that <c>workbook merge</c> combines with the other shards' into exactly the
/// unsharded output.
/// </summary>
public sealed class ShardOptions
{
    public Option<string?> Shard { get; } = new("--shard")
    {
        Description = "Run only shard K of N (K/N, e.g. 2/8) of the work and write a part file for `workbook merge` (README: Sharded sweeps).",
    };

    public Option<string?> Part { get; } = new("--part")
    {
        Description = "The part file a --shard run writes (default: VERB.part-K-of-N.json in the current folder).",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Shard);
        command.Options.Add(Part);
    }

    /// <summary>
    /// The shard asked for (null: the whole run), checked before any work. Options whose output only exists for the
    /// whole run (<paramref name="wholeRunOutputs"/>: --csv, --out, --scores) are refused beside --shard.
    /// </summary>
    public Shard? Parse(ParseResult parse, params Option[] wholeRunOutputs)
    {
        if (parse.GetValue(Shard) is not string text)
        {
            if (parse.GetValue(Part) is not null) throw new ArgumentException("--part names the part file of a --shard run; give --shard K/N too.");
            return null;
        }
        var shard = Sharding.Shard.Parse(text);
        foreach (var option in wholeRunOutputs)
            if (parse.GetResult(option) is { Implicit: false })
                throw new ArgumentException($"{option.Name} cannot be combined with --shard: a shard writes only its part file, and `workbook merge` writes the whole run's output (merge --out/--csv).");
        if (parse.GetValue(Part) is string part) CheckOutputPath("--part", part);
        return shard;
    }

    /// <summary>
    /// Writes this shard's part file: the run's identity (what every part of the run must share), what the shard
    /// covered and its results; then one line on stdout naming the file.
    /// </summary>
    public void WritePart(ParseResult parse, string command, Shard shard, int totalUnits, LoadedModel loaded, IReadOnlyList<TokenizedDataset> prompts,
        IEnumerable<KeyValuePair<string, string>> resolved, ShardCoverage covers, object result)
    {
        var units = shard.Units(totalUnits, "as planned");
        var part = new ShardPart
        {
            Command = command, Shard = shard.ToString(), TotalUnits = totalUnits, Units = units,
            Identity = Identity(parse, command, totalUnits, loaded, prompts, resolved), Covers = covers with { Units = $"{units} of {totalUnits}" },
            Result = ShardPartFile.ToElement(result),
        };
        string path = parse.GetValue(Part) ?? $"{command}.part-{shard.Index}-of-{shard.Count}.json";
        ShardPartFile.WriteFile(path, part);
        parse.InvocationConfiguration.Output.WriteLine($"{command} shard {shard}: {units} of {totalUnits} -> {path}");
    }

    /// <summary>
    /// Everything the parts of one run must share, in a fixed order: the workbook's version, the command and its number
    /// of work units, every option's value (given or default; --shard and --part excepted), the SHA-256 of every file an
    /// option names, the model's config name and parameter checksum, the prompts' checksum, and what the command resolved
    /// from them (batch size, metrics, methodologies, ...).
    /// </summary>
    Dictionary<string, string> Identity(ParseResult parse, string command, int totalUnits, LoadedModel loaded, IReadOnlyList<TokenizedDataset> prompts,
        IEnumerable<KeyValuePair<string, string>> resolved)
    {
        var identity = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["workbook version"] = RunChecksums.WorkbookVersion,
            ["command"] = command,
            ["work units"] = totalUnits.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var option in parse.CommandResult.Command.Options)
        {
            if (option == Shard || option == Part || option is System.CommandLine.Help.HelpOption or VersionOption) continue;
            var result = parse.GetResult(option);
            object? value = result is not null ? result.GetValueOrDefault<object?>() : option.HasDefaultValue ? option.GetDefaultValue() : null;
            string text = value switch
            {
                null => "(not given)",
                bool b => b ? "true" : "false",
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString() ?? "",
            };
            identity[$"option {option.Name}"] = text;
            if (value is string s)
                foreach (var item in s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    if (File.Exists(item)) identity[$"file {item} (sha256)"] = RunChecksums.File(item);
        }
        identity["model"] = loaded.Model.Config.Name;
        identity["model config (sha256)"] = RunChecksums.Config(loaded.Model.Config);
        identity["model parameters (sha256)"] = RunChecksums.Parameters(loaded.Model);
        identity["prompts (sha256)"] = RunChecksums.Prompts(prompts);
        foreach (var (key, value) in resolved) identity[key] = value;
        return identity;
    }

    /// <summary>Refuses, before any work, an output path that is a folder or whose folder does not exist.</summary>
    public static void CheckOutputPath(string option, string path)
    {
        if (Directory.Exists(path)) throw new ArgumentException($"{option} '{path}' is a folder; name a file.");
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null && !Directory.Exists(folder)) throw new ArgumentException($"{option} '{path}': the folder '{folder}' does not exist.");
    }

    /// <summary>"ABBA-3: 0..49" for each dataset part and prompt range a shard covered.</summary>
    public static IReadOnlyList<string> PromptRanges(IEnumerable<(string Part, int First, int Count)> batches) =>
        batches.GroupBy(b => b.Part).Select(g => $"{g.Key}: {string.Join(", ", Merge(g.Select(b => (b.First, b.Count))))}").ToArray();

    static IEnumerable<string> Merge(IEnumerable<(int First, int Count)> ranges)
    {
        var ordered = ranges.Distinct().OrderBy(r => r.First).ToList();
        for (int i = 0; i < ordered.Count;)
        {
            int start = ordered[i].First, end = ordered[i].First + ordered[i].Count;
            for (i++; i < ordered.Count && ordered[i].First <= end; i++) end = Math.Max(end, ordered[i].First + ordered[i].Count);
            yield return end - start == 1 ? $"{start}" : $"{start}..{end - 1}";
        }
    }
}

/// <summary>What a verb prints and writes, made once from its results, so an unsharded run and <c>workbook merge</c> give the same bytes.</summary>
/// <param name="Stdout">What the verb prints (honouring --json).</param>
/// <param name="Json">The verb's JSON document (what --json prints; discover's --out file).</param>
/// <param name="Csv">The per-prompt rows (eval and report's --csv), or null where the verb has none.</param>
public sealed record VerbOutputs(string Stdout, Func<string> Json, Func<string>? Csv);
