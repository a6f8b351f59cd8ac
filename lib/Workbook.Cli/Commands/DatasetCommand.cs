using System.CommandLine;
using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Tasks;
using Workbook.Tokenization;

namespace Workbook.Cli.Commands;

/// <summary>
/// <c>workbook dataset</c>: writes a task's generated prompts (seeded) as AutoCircuit JSON files, one per dataset part,
/// and last an <c>index.json</c> naming the task, seed and the files of this run.
/// </summary>
public static class DatasetCommand
{
    public const string IndexName = "index.json";

    public sealed record IndexEntry(string Part, string File, int Prompts);

    /// <summary>What one run wrote (no time stamps: the same seed gives the same bytes).</summary>
    public sealed record Index(string Task, int Seed, int? PromptsPerPart, IReadOnlyList<IndexEntry> Files);

    static readonly JsonSerializerOptions IndexJson = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Build()
    {
        var task = TaskInputs.Task();
        var seed = TaskInputs.Seed();
        var prompts = new Option<int?>("--prompts", "-n") { Description = "Prompts per part (default: the generator's full size)." }
            .Within(1, OptionLimits.MaxPrompts, "prompts per dataset part");
        var model = new Option<string?>("--model", "-m") { Description = "A model whose tokenizer locates word positions (needed by ioi; e.g. toy-ioi or gpt2)." };
        var outDir = new Option<string>("--out", "-o") { Description = "Folder to write {part}.json files into (created if missing).", Required = true };
        var json = CommonOptions.Json();
        var cmd = new Command("dataset", "Write a task's seeded prompts as AutoCircuit-format JSON files (the same seed gives the same bytes).")
        {
            task, seed, prompts, model, outDir, json,
        };
        cmd.SetAction(parse =>
        {
            var definition = KnownTasks.Get(parse.GetValue(task)!);
            int? count = parse.GetValue(prompts);
            if (count is < 1) throw new ArgumentException($"--prompts must be at least 1, got {count}.");
            ITokenizer? tokenizer = null;
            if (parse.GetValue(model) is string spec)
            {
                using var loaded = ModelLoader.LoadWithTokenizer(spec, new LoadOptions());
                tokenizer = loaded.RequireTokenizer();
            }
            var parts = definition.Generate(tokenizer, parse.GetValue(seed), count);
            string folder = parse.GetValue(outDir)!;
            // Marked in progress first, index.json last: an interrupted run never leaves an index over a mix of old and new parts.
            var run = Util.OutputFolderRun.Begin(folder, IndexName, $"workbook dataset --task {definition.Name} --seed {parse.GetValue(seed)}");
            var written = new List<IndexEntry>();
            foreach (var part in parts)
            {
                string name = string.Concat(part.Name.Select(ch => Path.GetInvalidFileNameChars().Contains(ch) || ch == ' ' ? '_' : ch)) + ".json";
                if (name == IndexName) name = "_" + name; // a part may not take the index's place
                string path = Path.Combine(folder, name);
                AutoCircuitJson.WriteFile(part, path); // atomic: temporary file, then rename
                written.Add(new IndexEntry(part.Name, name, part.Count));
                if (!parse.GetValue(json)) parse.InvocationConfiguration.Output.WriteLine($"{Util.ControlCharacters.Escape(path)}: {part.Count} prompts");
            }
            run.Complete(JsonSerializer.Serialize(new Index(definition.Name, parse.GetValue(seed), count, written), IndexJson) + "\n");
            if (parse.GetValue(json))
                CommonOptions.WriteJson(parse.InvocationConfiguration.Output, new
                {
                    task = definition.Name, seed = parse.GetValue(seed), index = run.IndexPath,
                    files = written.Select(w => new { part = w.Part, path = Path.Combine(folder, w.File), prompts = w.Prompts }),
                });
            return 0;
        });
        return cmd;
    }
}
