using System.CommandLine;
using Workbook.Checkpoints;
using Workbook.Tasks;
using Workbook.Tokenization;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook dataset</c>: writes a task's generated prompts (seeded) as AutoCircuit JSON files, one per dataset part.</summary>
public static class DatasetCommand
{
    public static Command Build()
    {
        var task = TaskInputs.Task();
        var seed = TaskInputs.Seed();
        var prompts = new Option<int?>("--prompts", "-n") { Description = "Prompts per part (default: the generator's full size)." };
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
            Directory.CreateDirectory(folder);
            var written = new List<object>();
            foreach (var part in parts)
            {
                string name = string.Concat(part.Name.Select(ch => Path.GetInvalidFileNameChars().Contains(ch) || ch == ' ' ? '_' : ch));
                string path = Path.Combine(folder, name + ".json");
                AutoCircuitJson.WriteFile(part, path); // atomic: temporary file, then rename
                written.Add(new { part = part.Name, path, prompts = part.Count });
                if (!parse.GetValue(json)) parse.InvocationConfiguration.Output.WriteLine($"{path}: {part.Count} prompts");
            }
            if (parse.GetValue(json)) CommonOptions.WriteJson(parse.InvocationConfiguration.Output, new { task = definition.Name, seed = parse.GetValue(seed), files = written });
            return 0;
        });
        return cmd;
    }
}
