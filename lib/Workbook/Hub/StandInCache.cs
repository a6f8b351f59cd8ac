using System.Security.Cryptography;
using System.Text;
using Workbook.Checkpoints;
using Workbook.Progress;
using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Hub;

/// <summary>A random-weights stand-in as written into the hub cache.</summary>
public sealed record StandInInCache(RandomWeightsInfo Info, RepoId Repo, string Commit, string Folder, long Bytes)
{
    /// <summary>The stand-in that <c>refs/main</c> pointed at before and that this one replaced (its snapshot was removed); null if none.</summary>
    public RandomWeightsInfo? Replaced { get; init; }
}

/// <summary>
/// Random-weights stand-ins (<see cref="RandomStandIns"/>) in the hub cache, under the real model's repository, so that
/// <c>--model gpt2 --offline</c> and the notebooks find them the way they would find the real model. Guarded so that a
/// stand-in is never taken for a download, and never hides one:
/// <list type="bullet">
/// <item>its snapshot's <c>config.json</c> is marked (<see cref="RandomWeightsInfo"/>), and its commit is a hash of the
/// stand-in's settings, not one the hub made; <c>workbook models list</c> shows it as "random weights";</item>
/// <item>writing one is refused when the cache already holds the real model (under any id it may be cached as);</item>
/// <item>the model hub never downloads over it on first use (it is complete as it is), and <c>workbook models pull</c>
/// replaces it: the real snapshot becomes <c>refs/main</c> and the stand-in's snapshot and blobs are deleted.</item>
/// </list>
/// </summary>
public static class StandInCache
{
    public static StandInInCache Write(string like, int seed, HubCache cache, ScalarType? storage = null, IProgress<WorkProgress>? progress = null)
    {
        like = RandomStandIns.Canonical(like);
        var model = HubModels.Aliases[like];
        foreach (var candidate in model.CacheCandidates)
            if (cache.ResolveRevision(candidate, "main") is { } existing && Directory.Exists(cache.SnapshotFolder(candidate, existing)) && !IsStandIn(cache, candidate, existing))
                throw new HubException($"The hub cache {cache.Root} already holds the real '{like}' ({candidate}@{existing[..12]}); a random stand-in would hide it. " +
                                       "Write the stand-in into a folder instead (--out DIR), or into another cache (HF_HUB_CACHE=DIR).");
        var repo = model.Repo;
        string repoFolder = cache.RepoFolder(repo);
        string staging = Path.Combine(repoFolder, $".standin-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            var files = RandomStandIns.Write(like, seed, staging, storage, progress);
            string commit = CommitOf(files);
            foreach (var file in files.Files)
            {
                string path = Path.Combine(staging, file);
                string etag = file == "model.safetensors" ? files.WeightsSha256 : ModelHub.GitBlobSha1(path);
                string blob = cache.BlobPath(repo, etag);
                Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
                File.Move(path, blob, overwrite: true);
                cache.LinkSnapshotFile(repo, commit, file, etag);
            }
            string? previous = cache.ResolveRevision(repo, "main");
            RandomWeightsInfo? replaced = previous is not null && previous != commit && IsStandIn(cache, repo, previous)
                ? RandomWeightsInfo.Read(cache.SnapshotFolder(repo, previous)) : null;
            cache.WriteRef(repo, "main", commit);
            if (replaced is not null) Remove(cache, repo, previous!);
            return new StandInInCache(files.Info, repo, commit, cache.SnapshotFolder(repo, commit), files.Bytes) { Replaced = replaced };
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>Whether the snapshot <paramref name="commit"/> of <paramref name="repo"/> is a random-weights stand-in.</summary>
    public static bool IsStandIn(HubCache cache, RepoId repo, string commit) =>
        cache.TryGetSnapshotFile(repo, commit, ModelFiles.Config) is { } config && RandomWeightsInfo.Read(config) is not null;

    /// <summary>Deletes a stand-in's snapshot and the blobs only it links to. Refuses a snapshot that is not a stand-in.</summary>
    public static void Remove(HubCache cache, RepoId repo, string commit)
    {
        if (!IsStandIn(cache, repo, commit)) throw new HubException($"{repo}@{commit} is not a random-weights stand-in; it is not removed.");
        string snapshots = Path.Combine(cache.RepoFolder(repo), "snapshots");
        string blobsFolder = Path.Combine(cache.RepoFolder(repo), "blobs");
        string folder = cache.SnapshotFolder(repo, commit);
        // Only blobs of this repository's cache folder are ever deleted: a link planted in a handed-over cache that points
        // elsewhere is dropped with the snapshot, never followed to delete its target. Walks are bounded and never enter linked folders.
        HashSet<string> LinkedBlobs(string under) => SafeRead.FilesUnder(under, MaxWalkEntries, message => new HubException(message))
            .Select(f => Path.Combine(under, f))
            .Select(f => new FileInfo(f).LinkTarget is { } t ? Path.GetFullPath(Path.Combine(Path.GetDirectoryName(f)!, t)) : null)
            .Where(b => b is not null && FileSystemEntries.IsInside(b, blobsFolder) && b != Path.GetFullPath(blobsFolder)).Select(b => b!).ToHashSet();
        var blobs = LinkedBlobs(folder);
        Directory.Delete(folder, recursive: true);
        var stillLinked = LinkedBlobs(snapshots);
        foreach (var blob in blobs)
            if (!stillLinked.Contains(blob) && FileSystemEntries.KindOf(blob) == EntryKind.RegularFile) File.Delete(blob);
    }

    const int MaxWalkEntries = 100_000;

    /// <summary>A commit id of the stand-in's own: the SHA-1 of its settings and weights (40 hex digits, never one the hub issued).</summary>
    static string CommitOf(StandInFiles files)
    {
        var text = $"workbook random-weights stand-in\nlike {files.Info.Like}\nseed {files.Info.Seed}\ndtype {files.Info.StorageDType}\nweights {files.WeightsSha256}\n";
        return Convert.ToHexString(SHA1.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant();
    }
}
