using System.CommandLine;
using Workbook.Checkpoints;
using Workbook.Hub;

namespace Workbook.Cli.Commands;

/// <summary><c>workbook models pull NAME</c> and <c>workbook models list</c>: the hub cache.</summary>
public static class ModelsCommand
{
    public sealed record PullOutput(string Name, string Repo, string Commit, string Folder, string? TokenizerFolder, int FilesDownloaded, long BytesDownloaded, int FilesReused);

    public sealed record ListedModel(string Repo, string? Alias, string? Commit, long SizeBytes, int Files, string Status, long IncompleteBytes, string Folder);

    /// <param name="environment">Where HF_* variables are read (the process environment by default; tests pass their own).</param>
    public static Command Build(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var cmd = new Command("models", "Download models from the HuggingFace hub into its cache, and list what is cached.");
        cmd.Subcommands.Add(Pull(environment));
        cmd.Subcommands.Add(List(environment));
        return cmd;
    }

    static Command Pull(Func<string, string?> environment)
    {
        var name = new Argument<string>("name")
        {
            Description = $"A model alias ({string.Join(", ", HubModels.Aliases.Keys)}) or a hub id owner/name.",
        };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit to pull.", DefaultValueFactory = _ => "main" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress bar." };
        var json = CommonOptions.Json();
        var cmd = new Command("pull", "Download (or update) a model's config, weights and tokenizer into the hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).")
        {
            name, revision, quiet, json,
        };
        cmd.SetAction((parse, cancel) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var options = HubOptions.FromEnvironment(environment) with
            {
                Revision = parse.GetValue(revision)!,
                Progress = ConsoleProgress.ForTerminal(error, parse.GetValue(quiet)),
            };
            if (options.Offline)
                throw new HubException("Cannot pull in offline mode: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE / WORKBOOK_OFFLINE) is set.");
            var model = ModelHub.Resolve(parse.GetValue(name)!);
            using var hub = new ModelHub(options);
            var pulled = hub.PullAsync(model, cancel).GetAwaiter().GetResult();
            var s = pulled.Statistics;
            var output = parse.InvocationConfiguration.Output;
            var result = new PullOutput(model.Name, pulled.Repo.Value, pulled.Commit, pulled.Folder, pulled.TokenizerFolder, s.FilesDownloaded, s.BytesDownloaded, s.FilesReused);
            if (parse.GetValue(json)) CommonOptions.WriteJson(output, result);
            else
            {
                output.WriteLine($"{model.Name}: {pulled.Repo} at {pulled.Commit[..12]}");
                output.WriteLine($"  downloaded {s.FilesDownloaded} file{(s.FilesDownloaded == 1 ? "" : "s")} ({ConsoleProgress.Bytes(s.BytesDownloaded)}), {s.FilesReused} already cached");
                output.WriteLine($"  {Util.ControlCharacters.Escape(pulled.Folder)}");
                if (pulled.TokenizerFolder != null) output.WriteLine($"  tokenizer: {Util.ControlCharacters.Escape(pulled.TokenizerFolder)}");
            }
            return Task.FromResult(0);
        });
        return cmd;
    }

    static Command List(Func<string, string?> environment)
    {
        var json = CommonOptions.Json();
        var cmd = new Command("list", "List the models in the hub cache with their sizes (also ones downloaded by Python tools).") { json };
        cmd.SetAction(parse =>
        {
            var options = HubOptions.FromEnvironment(environment);
            var cache = new HubCache(options.CacheDir);
            var rows = cache.List().Select(r => Describe(r)).ToList();
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                CommonOptions.WriteJson(output, rows);
                return 0;
            }
            output.WriteLine($"cache: {Util.ControlCharacters.Escape(cache.Root)}");
            if (rows.Count == 0)
            {
                output.WriteLine("(empty: try 'workbook models pull gpt2')");
                return 0;
            }
            output.WriteLine($"{"repository",-42} {"alias",-20} {"size",10} {"files",5}  {"commit",-12}  status");
            foreach (var r in rows)
                output.WriteLine($"{r.Repo,-42} {r.Alias ?? "",-20} {ConsoleProgress.Bytes(r.SizeBytes),10} {r.Files,5}  {(r.Commit ?? "")[..Math.Min(12, (r.Commit ?? "").Length)],-12}  {Util.ControlCharacters.Escape(r.Status)}" +
                                 (r.IncompleteBytes > 0 ? $" (+{ConsoleProgress.Bytes(r.IncompleteBytes)} of unfinished downloads)" : ""));
            return 0;
        });
        return cmd;
    }

    static ListedModel Describe(CachedRepo repo)
    {
        string? alias = HubModels.Aliases.Where(a => a.Value.CacheCandidates.Contains(repo.Id)).Select(a => a.Key).FirstOrDefault();
        repo.Refs.TryGetValue("main", out var commit);
        var snapshot = repo.Snapshots.FirstOrDefault(s => s.Commit == commit) ?? repo.Snapshots.LastOrDefault();
        string status;
        if (snapshot == null) status = "no snapshot";
        else
        {
            string folder = Path.Combine(repo.Folder, "snapshots", snapshot.Commit);
            string? missing = ModelFiles.FirstMissing(folder);
            bool tokenizerOnly = !File.Exists(Path.Combine(folder, ModelFiles.Config)) && File.Exists(Path.Combine(folder, "tokenizer.json"));
            status = tokenizerOnly ? "tokenizer" : missing == null ? (commit == null ? "complete (no refs/main)" : "complete") : $"incomplete: missing {missing}";
        }
        return new ListedModel(repo.Id.Value, alias, commit ?? snapshot?.Commit, repo.SizeOnDisk, snapshot?.Files.Count ?? 0, status, repo.IncompleteBytes, repo.Folder);
    }
}
