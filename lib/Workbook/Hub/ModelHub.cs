using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Workbook.Util;

namespace Workbook.Hub;

/// <summary>A model available on disk: the snapshot folder of its repository and, when separate, of its tokenizer.</summary>
public sealed record PulledModel(HubModel Model, RepoId Repo, string Commit, string Folder, string? TokenizerFolder, PullStatistics Statistics)
{
    /// <summary>The random-weights stand-in that <c>refs/main</c> pointed at before this pull and that the pull removed; null if none.</summary>
    public Checkpoints.RandomWeightsInfo? ReplacedStandIn { get; init; }
}

/// <summary>
/// What a pull did: files downloaded (and their bytes), files found complete in the cache, and files whose bytes could
/// not be checked against a checksum (the server's ETag was not one); a pull with any of those writes no ref.
/// </summary>
public sealed record PullStatistics(int FilesDownloaded, long BytesDownloaded, int FilesReused, int FilesUnverified = 0)
{
    public static readonly PullStatistics None = new(0, 0, 0);
    public PullStatistics Add(PullStatistics o) =>
        new(FilesDownloaded + o.FilesDownloaded, BytesDownloaded + o.BytesDownloaded, FilesReused + o.FilesReused, FilesUnverified + o.FilesUnverified);
}

/// <summary>
/// Downloads models from the hub into the shared cache and finds them there. Every file is fetched to
/// <c>blobs/{etag}.incomplete</c> (resuming with an HTTP Range request after an interruption), checked against
/// the size and checksum the hub reported, renamed to <c>blobs/{etag}</c> and linked from the snapshot; one lock
/// file per blob makes concurrent pulls of the same model safe. <c>refs/{revision}</c> is written last, so a
/// half-pulled model is never taken for a complete one.
/// </summary>
public sealed class ModelHub : IDisposable
{
    readonly HubClient? _client;
    readonly HttpMessageHandler? _handler;

    public HubOptions Options { get; }
    public HubCache Cache { get; }

    public ModelHub(HubOptions? options = null, HttpMessageHandler? handler = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        Cache = new HubCache(Options.CacheDir);
        _handler = handler;
        if (!Options.Offline) _client = new HubClient(Options, handler);
    }

    public void Dispose() => _client?.Dispose();

    HubClient Client => _client ?? throw new InvalidOperationException("The hub client is not available in offline mode.");

    /// <summary>Resolves an alias or hub id; throws naming the known aliases when it is neither.</summary>
    public static HubModel Resolve(string spec) => HubModels.TryResolve(CheckName(spec)) ?? throw new ArgumentException(
        $"'{spec}' is neither a model alias ({string.Join(", ", HubModels.Aliases.Keys)}) nor a hub id of the form owner/name." +
        Util.NearestNames.DidYouMean(spec, HubModels.Aliases.Keys));

    static string CheckName(string spec)
    {
        ControlCharacters.EnsureNone(spec, "The model name");
        return spec;
    }

    /// <summary>
    /// The model from the cache when it is complete there; otherwise downloaded, unless offline, in which case the
    /// error names the missing file.
    /// </summary>
    public PulledModel Ensure(HubModel model, CancellationToken cancel = default) => EnsureAsync(model, cancel).GetAwaiter().GetResult();

    public async Task<PulledModel> EnsureAsync(HubModel model, CancellationToken cancel = default)
    {
        var (cached, missing) = FindCached(model);
        // A random-weights stand-in is complete as it is: first use never downloads over it (`models pull` replaces it).
        if (cached != null && (cached.TokenizerFolder != null || !NeedsTokenizerRepo(model, cached.Folder, out _) || Options.Offline
                               || StandInCache.IsStandIn(Cache, cached.Repo, cached.Commit)))
            return cached;
        if (Options.Offline)
            throw new OfflineFileMissingException(model.Repo.Value, missing.File,
                $"Offline mode: model '{model.Name}' is not complete in the cache {Cache.Root}: {missing.Description}. " +
                $"Pull it first with network access (workbook models pull {model.Name}), or unset HF_HUB_OFFLINE / drop --offline.");
        return await PullAsync(model, cancel).ConfigureAwait(false);
    }

    sealed record Missing(string File, string Description);

    /// <summary>The model when every file it needs is in the cache; otherwise null and the first thing missing.</summary>
    (PulledModel? Model, Missing Missing) FindCached(HubModel model)
    {
        Missing? firstMissing = null;
        foreach (var repo in model.CacheCandidates)
        {
            string? commit = Cache.ResolveRevision(repo, Options.Revision);
            if (commit == null) continue;
            string folder = Cache.SnapshotFolder(repo, commit);
            string? missing = Directory.Exists(folder) ? Cache.SnapshotProblem(repo, commit) ?? ModelFiles.FirstMissing(folder) : ModelFiles.Config;
            if (missing != null)
            {
                firstMissing ??= new Missing(missing, $"{missing} is missing from {folder}");
                continue;
            }
            string? tokenizerFolder = null;
            if (NeedsTokenizerRepo(model, folder, out var tokenizerRepo))
            {
                tokenizerFolder = FindCachedTokenizer(tokenizerRepo!);
            }
            return (new PulledModel(model, repo, commit, folder, tokenizerFolder, PullStatistics.None), new Missing("", ""));
        }
        firstMissing ??= new Missing(ModelFiles.Config,
            $"no snapshot for revision '{Options.Revision}' (looked for refs/{Options.Revision} in {string.Join(", ", model.CacheCandidates.Select(c => c.CacheFolderName))})");
        return (null, firstMissing);
    }

    /// <summary>Whether the tokenizer lives in another repository (attn-only-4l), which is then named.</summary>
    static bool NeedsTokenizerRepo(HubModel model, string folder, out RepoId? tokenizerRepo)
    {
        tokenizerRepo = null;
        if (File.Exists(Path.Combine(folder, "tokenizer.json"))) return false;
        tokenizerRepo = model.TokenizerRepo ?? ModelFiles.TokenizerRepoOf(Path.Combine(folder, ModelFiles.Config));
        return tokenizerRepo != null && tokenizerRepo != model.Repo;
    }

    /// <summary>The cached snapshot folder of a tokenizer repository holding <c>tokenizer.json</c>, or null.</summary>
    public string? FindCachedTokenizer(RepoId repo)
    {
        string? commit = Cache.ResolveRevision(repo, "main");
        if (commit == null) return null;
        return Cache.TryGetSnapshotFile(repo, commit, "tokenizer.json") != null ? Cache.SnapshotFolder(repo, commit) : null;
    }

    /// <summary>The tokenizer folder of a repository: from the cache, else downloaded (unless offline).</summary>
    public string EnsureTokenizer(RepoId repo, CancellationToken cancel = default)
    {
        string? cached = FindCachedTokenizer(repo);
        if (cached != null) return cached;
        if (Options.Offline)
            throw new OfflineFileMissingException(repo.Value, "tokenizer.json",
                $"Offline mode: the tokenizer repository '{repo}' has no tokenizer.json in the cache {Cache.Root} (looked for refs/main in {repo.CacheFolderName}).");
        return PullTokenizerAsync(repo, cancel).GetAwaiter().GetResult().Folder;
    }

    /// <summary>Downloads (or updates) a model from the hub: contacts the hub even when the cache has it.</summary>
    public PulledModel Pull(HubModel model, CancellationToken cancel = default) => PullAsync(model, cancel).GetAwaiter().GetResult();

    public async Task<PulledModel> PullAsync(HubModel model, CancellationToken cancel = default)
    {
        if (Options.Offline)
            throw new HubException($"Cannot pull '{model.Name}' in offline mode (HF_HUB_OFFLINE or --offline).");
        var repo = model.Repo;
        string? before = Cache.ResolveRevision(repo, Options.Revision);
        var revision = await RetryAsync(() => Client.GetRevisionAsync(repo, Options.Revision, cancel), cancel).ConfigureAwait(false);
        string commit = revision.Commit;
        var files = revision.Files.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        if (!files.Contains(ModelFiles.Config))
            throw new HubException($"Repository '{repo}' (commit {commit}) has no config.json: it is not a model the workbook can load.");
        var stats = PullStatistics.None;
        stats = stats.Add(await FetchAsync(repo, commit, ModelFiles.Config, cancel).ConfigureAwait(false));
        string weights = ModelFiles.ChooseWeights(files)
            ?? throw new HubException($"Repository '{repo}' (commit {commit}) has no weights: expected {ModelFiles.WeightsDescription}.");
        stats = stats.Add(await FetchAsync(repo, commit, weights, cancel).ConfigureAwait(false));
        if (ModelFiles.IsIndex(weights))
        {
            string index = Path.Combine(Cache.SnapshotFolder(repo, commit), weights);
            foreach (var shard in ModelFiles.ShardsOf(index))
            {
                if (!files.Contains(shard))
                    throw new HubException($"Repository '{repo}': {weights} lists shard '{shard}', which the repository does not have.");
                stats = stats.Add(await FetchAsync(repo, commit, shard, cancel).ConfigureAwait(false));
            }
        }
        foreach (var t in ModelFiles.TokenizerFiles.Where(files.Contains))
            stats = stats.Add(await FetchAsync(repo, commit, t, cancel).ConfigureAwait(false));

        string folder = Cache.SnapshotFolder(repo, commit);
        string? tokenizerFolder = null;
        if (NeedsTokenizerRepo(model, folder, out var tokenizerRepo))
        {
            var tok = await PullTokenizerAsync(tokenizerRepo!, cancel).ConfigureAwait(false);
            tokenizerFolder = tok.Folder;
            stats = stats.Add(tok.Statistics);
        }
        // Last: only now does the revision point at a snapshot that holds everything, each file verified.
        Checkpoints.RandomWeightsInfo? replaced = before is not null && before != commit && StandInCache.IsStandIn(Cache, repo, before)
            ? Checkpoints.RandomWeightsInfo.Read(Cache.SnapshotFolder(repo, before)) : null;
        // A stand-in goes only once the ref points at the verified real snapshot.
        if (WriteRefIfVerified(repo, Options.Revision, commit, stats) && replaced is not null) StandInCache.Remove(Cache, repo, before!);
        return new PulledModel(model, repo, commit, folder, tokenizerFolder, stats) { ReplacedStandIn = replaced };
    }

    async Task<(string Folder, PullStatistics Statistics)> PullTokenizerAsync(RepoId repo, CancellationToken cancel)
    {
        var revision = await RetryAsync(() => Client.GetRevisionAsync(repo, "main", cancel), cancel).ConfigureAwait(false);
        if (!revision.Has("tokenizer.json"))
            throw new HubException($"Tokenizer repository '{repo}' (commit {revision.Commit}) has no tokenizer.json.");
        var stats = PullStatistics.None;
        foreach (var t in ModelFiles.TokenizerFiles.Where(revision.Has))
            stats = stats.Add(await FetchAsync(repo, revision.Commit, t, cancel).ConfigureAwait(false));
        WriteRefIfVerified(repo, "main", revision.Commit, stats);
        return (Cache.SnapshotFolder(repo, revision.Commit), stats);
    }

    /// <summary>
    /// A ref says "this snapshot is complete and what the hub served": never written when a file could not be verified,
    /// so that the next use asks the hub again instead of trusting unchecked bytes.
    /// </summary>
    bool WriteRefIfVerified(RepoId repo, string revision, string commit, PullStatistics stats)
    {
        if (stats.FilesUnverified == 0)
        {
            Cache.WriteRef(repo, revision, commit);
            return true;
        }
        Options.Progress?.Note($"{repo}: {stats.FilesUnverified} file(s) could not be verified against a checksum (the server's ETag is not one); " +
                               $"refs/{revision} is not written, so the next use checks with the hub again.");
        return false;
    }

    /// <summary>Downloads one file into the cache (or finds it there) and links it from the snapshot.</summary>
    public Task<PullStatistics> FetchAsync(RepoId repo, string commit, string file, CancellationToken cancel = default) =>
        FetchCoreAsync(repo, commit, file, cancel);

    async Task<PullStatistics> FetchCoreAsync(RepoId repo, string commit, string file, CancellationToken cancel)
    {
        // A snapshot entry leading to a verified blob needs no new look-up (one leading to unverified bytes does).
        if (Cache.TryGetSnapshotFile(repo, commit, file) is { } existing && !IsUnverifiedBlob(existing)) return new PullStatistics(0, 0, 1);
        var remote = await RetryAsync(() => Client.GetFileMetadataAsync(repo, commit, file, cancel), cancel).ConfigureAwait(false);
        if (remote.Commit != commit)
            throw new HubException($"'{file}' in '{repo}': the hub answered for commit {remote.Commit}, not the requested {commit}.");
        string key = DownloadKey(repo, commit, remote);
        bool checksum = IsChecksum(remote);
        if (checksum && Cache.HasBlob(repo, key))
        {
            Cache.LinkSnapshotFile(repo, commit, file, key);
            Options.Progress?.Note($"{repo}/{file}: already in the cache");
            return new PullStatistics(0, 0, 1);
        }
        using (Cache.AcquireLock(repo, key, Options.LockTimeout, m => Options.Progress?.Note($"{repo}/{file}: {m}"), cancel))
        {
            if (checksum && Cache.HasBlob(repo, key)) // another pull finished it while we waited
            {
                Cache.LinkSnapshotFile(repo, commit, file, key);
                return new PullStatistics(0, 0, 1);
            }
            var (downloaded, blob, verified) = await DownloadBlobAsync(repo, remote, key, cancel).ConfigureAwait(false);
            Cache.LinkSnapshotFile(repo, commit, file, blob);
            return new PullStatistics(1, downloaded, 0, verified ? 0 : 1);
        }
    }

    /// <summary>Blobs of files that could not be verified are named <c>unverified-sha256-{sha256 of the bytes}</c>.</summary>
    const string UnverifiedPrefix = "unverified-";

    static bool IsUnverifiedBlob(string snapshotEntry)
    {
        try
        {
            return Path.GetFileName(FileSystemEntries.RealPath(snapshotEntry)).StartsWith(UnverifiedPrefix, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>Whether the ETag is a strong validator shaped like a checksum (sha256 of an LFS file, git blob sha1 of another).</summary>
    static bool IsChecksum(RemoteFile remote) => !remote.WeakEtag && ChecksumKind(remote.Etag.ToLowerInvariant()) != null;

    static string? ChecksumKind(string etag) => IsHex(etag, 64) ? "sha256" : IsHex(etag, 40) ? "git blob sha1" : null;

    /// <summary>
    /// The name under which a file downloads (<c>{key}.incomplete</c>) and is locked: its checksum ETag, as the Python
    /// tools do; for any other ETag a hash of where it came from, so that two files never share a partial download.
    /// </summary>
    static string DownloadKey(RepoId repo, string commit, RemoteFile remote) => IsChecksum(remote)
        ? remote.Etag.ToLowerInvariant()
        : UnverifiedPrefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{repo}\n{commit}\n{remote.File}\n{remote.Etag}\n{remote.Size}")))[..40];

    /// <summary>Runs a hub request, retrying transient failures (connection errors, timeouts, HTTP 5xx/429) with back-off.</summary>
    async Task<T> RetryAsync<T>(Func<Task<T>> request, CancellationToken cancel)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await request().ConfigureAwait(false);
            }
            catch (TransientHubException e) when (attempt < Options.MaxAttempts && !cancel.IsCancellationRequested)
            {
                var delay = Options.RetryDelay * Math.Pow(2, attempt - 1);
                Options.Progress?.Note($"{e.Message} Retrying in {delay.TotalSeconds:0.#} s (try {attempt + 1} of {Options.MaxAttempts}).");
                await Task.Delay(delay, cancel).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Downloads into <c>blobs/{key}.incomplete</c> with retries, verifies it and renames it to its blob. Returns the
    /// bytes transferred, the blob's name and whether the bytes matched a checksum.
    /// </summary>
    async Task<(long Transferred, string Blob, bool Verified)> DownloadBlobAsync(RepoId repo, RemoteFile remote, string key, CancellationToken cancel)
    {
        string incomplete = Cache.IncompletePath(repo, key);
        Cache.PrepareFolderFor(incomplete);
        var transferred = new StrongBox<long>(0);
        for (int attempt = 1; ; attempt++)
        {
            long have = IncompleteLength(incomplete);
            Options.Progress?.Started(repo.Value, remote.File, remote.Size, have);
            try
            {
                await TransferAsync(remote, incomplete, transferred, cancel).ConfigureAwait(false);
                var (blobName, verified) = Verify(repo, remote, incomplete);
                string blob = Cache.BlobPath(repo, blobName);
                if (FileSystemEntries.KindOf(blob) is EntryKind.SymbolicLink or EntryKind.Other) File.Delete(blob); // never a blob: replace it
                if (Cache.HasBlob(repo, blobName)) File.Delete(incomplete); // the same bytes are already there
                else File.Move(incomplete, blob, overwrite: false);
                Options.Progress?.Finished(true);
                return (transferred.Value, blobName, verified);
            }
            catch (TransientHubException e) when (attempt < Options.MaxAttempts && !cancel.IsCancellationRequested)
            {
                Options.Progress?.Finished(false, e.Message);
                var delay = Options.RetryDelay * Math.Pow(2, attempt - 1);
                Options.Progress?.Note($"{repo}/{remote.File}: {e.Message}; resuming in {delay.TotalSeconds:0.#} s (try {attempt + 1} of {Options.MaxAttempts})");
                await Task.Delay(delay, cancel).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Options.Progress?.Finished(false, e.Message);
                if (e is VerificationException && FileSystemEntries.KindOf(incomplete) == EntryKind.RegularFile) File.Delete(incomplete); // never resume from rejected bytes
                if (e is TransientHubException t)
                    throw new TransientHubException($"Downloading '{remote.File}' from '{repo}' failed after {attempt} tries: {t.Message} " +
                        $"The {IncompleteLength(incomplete)} bytes received are kept in {incomplete}; pulling again resumes from there.", t);
                throw;
            }
        }
    }

    /// <summary>Bytes of a partial download to resume from: only a regular file counts (anything else there is removed).</summary>
    static long IncompleteLength(string incomplete)
    {
        switch (FileSystemEntries.KindOf(incomplete))
        {
            case EntryKind.RegularFile:
                return new FileInfo(incomplete).Length;
            case EntryKind.Missing:
                return 0;
            case EntryKind.Directory:
                throw new HubException($"{incomplete}: a folder where a partial download belongs; remove it and pull again.");
            default:
                File.Delete(incomplete); // a link (perhaps to a file outside the cache) or a device: never written through
                return 0;
        }
    }

    /// <summary>Appends the missing bytes of one file to <paramref name="incomplete"/>, counting them in <paramref name="received"/>.</summary>
    async Task TransferAsync(RemoteFile remote, string incomplete, StrongBox<long> received, CancellationToken cancel)
    {
        long have = IncompleteLength(incomplete);
        if (have > remote.Size)
        {
            File.Delete(incomplete); // longer than the file can be: not a prefix of it
            have = 0;
        }
        if (have == remote.Size && have > 0) return;

        using var resp = await Client.GetContentAsync(remote.Location, have, cancel).ConfigureAwait(false);
        if (resp.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            File.Delete(incomplete);
            throw new VerificationException($"'{remote.File}': the hub reported {remote.Size} bytes, but the server holds fewer " +
                $"(it refused a request from byte {have}). Nothing was kept.");
        }
        if ((int)resp.StatusCode is >= 500 or 429 or 408)
            throw new TransientHubException($"HTTP {(int)resp.StatusCode} from {remote.Location.Host}.");
        if (!resp.IsSuccessStatusCode)
            throw new HubException($"'{remote.File}': HTTP {(int)resp.StatusCode} from {remote.Location}.");
        bool partial = resp.StatusCode == HttpStatusCode.PartialContent;
        if (partial && resp.Content.Headers.ContentRange?.From != have)
            throw new TransientHubException($"the server answered a range request from byte {have} with range {resp.Content.Headers.ContentRange}.");
        if (!partial) have = 0; // the server ignored the range: start over
        long? length = resp.Content.Headers.ContentLength;
        if (length != null && have + length.Value != remote.Size)
        {
            if (File.Exists(incomplete) && have == 0) File.Delete(incomplete);
            throw new VerificationException($"'{remote.File}': the hub reported {remote.Size} bytes, but the server is sending {have + length.Value}. Nothing was kept.");
        }

        await using var body = await resp.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false);
        if (have == 0 && FileSystemEntries.KindOf(incomplete) == EntryKind.RegularFile) File.Delete(incomplete);
        // Created exclusively, or appended to only when it is a regular file: a link planted as the partial download is never followed.
        await using var output = have == 0 ? AtomicFile.CreateExclusive(incomplete, useAsync: true) : AtomicFile.OpenForAppend(incomplete, useAsync: true);
        var buffer = new byte[1 << 20];
        long written = 0;
        // Stall detection: within every StallTimeout, StallBytes (or the rest of the file) must arrive.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var windowStart = TimeSpan.Zero;
        long windowBytes = 0;
        void CheckWindow()
        {
            if (clock.Elapsed - windowStart < Options.StallTimeout) return;
            long needed = Math.Min(Options.StallBytes, remote.Size - (have + written - windowBytes));
            if (windowBytes < needed)
                throw new TransientHubException($"the download stalled: {windowBytes} bytes in {Options.StallTimeout.TotalSeconds:0.#} s, fewer than the {needed} required " +
                                                "(WORKBOOK_HUB_STALL_TIMEOUT allows slower servers).");
            windowStart = clock.Elapsed;
            windowBytes = 0;
        }
        // A read is never cancelled to look at the window (cancelling a read aborts the connection): it stays pending
        // while the window is checked, and is abandoned only when the download is declared stalled.
        Task<int>? pending = null;
        try
        {
            while (true)
            {
                pending ??= Client.ReadAsync(body, buffer, cancel);
                var left = Options.StallTimeout - (clock.Elapsed - windowStart);
                if (left <= TimeSpan.Zero || await Task.WhenAny(pending, Task.Delay(left, cancel)).ConfigureAwait(false) != pending)
                {
                    CheckWindow(); // the window ended while waiting: stalled unless enough came before
                    continue;
                }
                int n = await pending.ConfigureAwait(false);
                pending = null;
                if (n == 0) break;
                if (have + written + n > remote.Size)
                {
                    await output.DisposeAsync().ConfigureAwait(false);
                    File.Delete(incomplete);
                    throw new VerificationException($"'{remote.File}': the server sent more than the {remote.Size} bytes the hub reported. Nothing was kept.");
                }
                await output.WriteAsync(buffer.AsMemory(0, n), cancel).ConfigureAwait(false);
                written += n;
                windowBytes += n;
                received.Value += n;
                Options.Progress?.Advanced(n);
                CheckWindow();
            }
        }
        finally
        {
            // An abandoned read fails once the response is disposed; observe it so that it is not reported as unobserved.
            _ = pending?.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
        await output.FlushAsync(cancel).ConfigureAwait(false);
        if (have + written < remote.Size)
            throw new TransientHubException($"the connection closed after {have + written} of {remote.Size} bytes.");
    }

    /// <summary>
    /// Checks the size, then the bytes against the ETag when it is a checksum (sha256 for 64 hex digits, git blob sha1
    /// for 40). Returns the blob name: the ETag when the bytes match it; for an ETag that is not a checksum (weak, short
    /// or anything else) the sha256 of the bytes, marked unverified, so that different files never share a blob.
    /// A strong checksum ETag that does not match is a <see cref="VerificationException"/>.
    /// </summary>
    (string Blob, bool Verified) Verify(RepoId repo, RemoteFile remote, string incomplete)
    {
        long size = new FileInfo(incomplete).Length;
        if (size != remote.Size)
        {
            File.Delete(incomplete);
            throw new VerificationException($"'{remote.File}' from '{repo}': {size} bytes arrived, the hub reported {remote.Size}. Nothing was kept.");
        }
        string etag = remote.Etag.ToLowerInvariant();
        string? kind = ChecksumKind(etag);
        string? actual = kind switch
        {
            "sha256" => Sha256(incomplete),
            "git blob sha1" => GitBlobSha1(incomplete),
            _ => null,
        };
        if (actual != null && actual == etag) return (etag, true);
        if (actual != null && !remote.WeakEtag)
        {
            File.Delete(incomplete);
            throw new VerificationException($"'{remote.File}' from '{repo}': checksum mismatch ({kind} of the download is {actual}, the hub reported {etag}). Nothing was kept.");
        }
        string content = Sha256(incomplete);
        Options.Progress?.Note($"{repo}/{remote.File}: the server's ETag '{ControlCharacters.Quote(remote.Etag, 80)}'{(remote.WeakEtag ? " (weak)" : "")} is not a checksum of the bytes; " +
                               "only the size was checked, and the file is kept under its own sha256 as unverified.");
        return (UnverifiedPrefix + "sha256-" + content, false);
    }

    static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    static bool IsHex(string s, int length) => s.Length == length && s.All(Uri.IsHexDigit);

    /// <summary>Git's object id of a file: sha1 of "blob {size}\0" followed by the contents.</summary>
    public static string GitBlobSha1(string path)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        using var f = File.OpenRead(path);
        sha.AppendData(Encoding.ASCII.GetBytes($"blob {f.Length}\0"));
        var buffer = new byte[1 << 20];
        int n;
        while ((n = f.Read(buffer)) > 0) sha.AppendData(buffer, 0, n);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
