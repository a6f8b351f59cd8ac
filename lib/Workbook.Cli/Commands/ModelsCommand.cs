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
        cmd.Subcommands.Add(Random(environment));
        return cmd;
    }

    public sealed record RandomOutput(string Like, int Seed, string StorageDType, string Folder, string? Repo, string? Commit, long Bytes, string? Replaced);

    static Command Random(Func<string, string?> environment)
    {
        var like = new Option<string>("--like") { Description = $"The real model whose exact configuration the stand-in has: {string.Join(", ", RandomStandIns.Names)}.", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights (the same seed writes the same weights).", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out", "-o") { Description = "Write the checkpoint into this folder. Default: into the hub cache under the real model's id, so that --model NAME (with --offline) finds it." };
        var dtype = new Option<string?>("--dtype") { Description = "dtype on disk: float32 or float16 (default: the real checkpoint's, float16 for Pythia, float32 otherwise)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress." };
        var json = CommonOptions.Json();
        var cmd = new Command("random", "Write a stand-in of one of the paper's models: its exact configuration with seeded random weights, marked as random " +
                                        "in its config.json, for benchmarks and offline smoke tests (not the real model; results on it mean nothing).")
        {
            like, seed, output, dtype, quiet, json,
        };
        cmd.SetAction(parse =>
        {
            var error = parse.InvocationConfiguration.Error;
            string name = RandomStandIns.Canonical(parse.GetValue(like)!);
            int s = parse.GetValue(seed);
            if (s < 0) throw new ArgumentException($"--seed must not be negative, got {s}.");
            TorchSharp.torch.ScalarType? storage = parse.GetValue(dtype) is string d ? CommonOptions.ParseDType(d) : null;
            string? folder = parse.GetValue(output);
            var hubOptions = HubOptions.FromEnvironment(environment);
            string target = folder ?? hubOptions.CacheDir;
            EnsureFreeSpace(target, RandomStandIns.WeightBytes(name, storage));
            using var progress = parse.GetValue(quiet) ? null : Progress.ProgressPrinter.ForStandardError(error);
            RandomOutput result;
            if (folder is not null)
            {
                if (Directory.Exists(folder) && File.Exists(Path.Combine(folder, "config.json")) && RandomWeightsInfo.Read(folder) is null)
                    throw new ArgumentException($"'{folder}' holds a checkpoint that is not a random stand-in; it is not overwritten. Choose another --out folder.");
                var files = RandomStandIns.Write(name, s, folder, storage, progress);
                result = new RandomOutput(name, s, files.Info.StorageDType, folder, null, null, files.Bytes, null);
            }
            else
            {
                var written = StandInCache.Write(name, s, new HubCache(hubOptions.CacheDir), storage, progress);
                result = new RandomOutput(name, s, written.Info.StorageDType, written.Folder, written.Repo.Value, written.Commit, written.Bytes, written.Replaced?.ToString());
            }
            progress?.Dispose();
            var writer = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                CommonOptions.WriteJson(writer, result);
                return 0;
            }
            writer.WriteLine($"{name}: random weights (seed {s}, {result.StorageDType} on disk, {ConsoleProgress.Bytes(result.Bytes)}) with the real model's configuration — NOT the real model");
            writer.WriteLine($"  {result.Folder}");
            if (result.Repo is not null)
            {
                writer.WriteLine($"  in the hub cache as {result.Repo} (stand-in commit {result.Commit![..12]}): --model {name} finds it; `workbook models pull {name}` replaces it with the real weights");
                if (result.Replaced is not null) writer.WriteLine($"  replaced the earlier stand-in: {result.Replaced}");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Refuses before writing when the target's file system has less room than the weights need (plus 5 %).</summary>
    static void EnsureFreeSpace(string target, long bytes)
    {
        var existing = Path.GetFullPath(target);
        while (!Directory.Exists(existing) && Path.GetDirectoryName(existing) is { } parent) existing = parent;
        long free = new DriveInfo(existing).AvailableFreeSpace;
        if (free < bytes + bytes / 20)
            throw new IOException($"The stand-in needs {ConsoleProgress.Bytes(bytes)} but {existing} has {ConsoleProgress.Bytes(free)} free.");
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
            if (pulled.ReplacedStandIn is { } replaced)
                error.WriteLine($"note: replaced the {replaced} that the cache held for {model.Name}; its files were deleted.");
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
            if (RandomWeightsInfo.Read(folder) is { } random) status = $"RANDOM WEIGHTS (stand-in, seed {random.Seed}; `models pull` replaces it)";
        }
        return new ListedModel(repo.Id.Value, alias, commit ?? snapshot?.Commit, repo.SizeOnDisk, snapshot?.Files.Count ?? 0, status, repo.IncompleteBytes, repo.Folder);
    }
}
