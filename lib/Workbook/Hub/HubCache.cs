using System.Text.RegularExpressions;

namespace Workbook.Hub;

/// <summary>
/// The HuggingFace hub cache layout, shared with the Python tools:
/// <code>
/// {CacheDir}/models--owner--name/blobs/{etag}                 file contents, named by sha256 (LFS) or git blob sha1
///                               /snapshots/{commit}/{file}     symlinks ../../blobs/{etag} (copies where symlinks fail)
///                               /refs/{revision}               the commit a branch or tag pointed to when pulled
/// {CacheDir}/.locks/models--owner--name/{etag}.lock           held while one process downloads that blob
/// </code>
/// A blob appears under its final name only once it is complete and verified; partial data lives in
/// <c>blobs/{etag}.incomplete</c>, from which an interrupted download resumes.
/// </summary>
public sealed partial class HubCache
{
    public string Root { get; }

    public HubCache(string root) => Root = Path.GetFullPath(root);

    [GeneratedRegex("^[0-9a-f]{40}$")]
    internal static partial Regex CommitPattern();

    [GeneratedRegex(@"^[A-Za-z0-9._\-]{1,128}$")]
    private static partial Regex EtagPattern();

    public string RepoFolder(RepoId repo) => Path.Combine(Root, repo.CacheFolderName);

    public string SnapshotFolder(RepoId repo, string commit)
    {
        if (!CommitPattern().IsMatch(commit)) throw new HubException($"'{commit}' is not a 40-character commit hash.");
        return Path.Combine(RepoFolder(repo), "snapshots", commit);
    }

    public string BlobPath(RepoId repo, string etag) => Path.Combine(RepoFolder(repo), "blobs", CheckEtag(etag));

    public string IncompletePath(RepoId repo, string etag) => BlobPath(repo, etag) + ".incomplete";

    public string LockPath(RepoId repo, string etag) => Path.Combine(Root, ".locks", repo.CacheFolderName, CheckEtag(etag) + ".lock");

    static string CheckEtag(string etag) => EtagPattern().IsMatch(etag) && etag != "." && etag != ".."
        ? etag
        : throw new HubException($"The hub reported an unusable ETag '{etag}' (expected a hash).");

    /// <summary>The commit a revision resolves to in the cache: the revision itself when it is a commit hash, else refs/{revision}.</summary>
    public string? ResolveRevision(RepoId repo, string revision)
    {
        if (CommitPattern().IsMatch(revision)) return revision;
        string refPath = RefPath(repo, revision);
        if (!File.Exists(refPath)) return null;
        string commit = File.ReadAllText(refPath).Trim();
        return CommitPattern().IsMatch(commit) ? commit : null;
    }

    string RefPath(RepoId repo, string revision)
    {
        // Branch names may contain '/', never '..'.
        if (revision.Length == 0 || revision.Contains("..") || revision.StartsWith('/') || revision.Contains('\\'))
            throw new HubException($"'{revision}' is not a usable revision name.");
        return Path.Combine(RepoFolder(repo), "refs", revision.Replace('/', Path.DirectorySeparatorChar));
    }

    /// <summary>Records that <paramref name="revision"/> points at <paramref name="commit"/> (atomically).</summary>
    public void WriteRef(RepoId repo, string revision, string commit)
    {
        if (CommitPattern().IsMatch(revision)) return;
        string path = RefPath(repo, revision);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit) return;
        AtomicFile.WriteAllText(path, commit);
    }

    /// <summary>Path of <paramref name="file"/> in a snapshot, or null when it is not there (or its blob is gone).</summary>
    public string? TryGetSnapshotFile(RepoId repo, string commit, string file)
    {
        string path = Path.Combine(SnapshotFolder(repo, commit), ToLocalPath(file));
        return File.Exists(path) ? path : null; // File.Exists follows the symlink to the blob
    }

    internal static string ToLocalPath(string repoFile)
    {
        var parts = repoFile.Split('/');
        if (parts.Any(p => p is "" or "." or ".." || p.Contains('\\')))
            throw new HubException($"The hub listed an unsafe file name '{repoFile}'.");
        return Path.Combine(parts);
    }

    /// <summary>
    /// Makes <c>snapshots/{commit}/{file}</c> point at a complete blob: a relative symlink, or a copy where the
    /// file system has no symlinks. Replaces whatever was there, atomically.
    /// </summary>
    public string LinkSnapshotFile(RepoId repo, string commit, string file, string etag)
    {
        string blob = BlobPath(repo, etag);
        string pointer = Path.Combine(SnapshotFolder(repo, commit), ToLocalPath(file));
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        string relative = Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob);
        if (IsLinkTo(pointer, relative)) return pointer;
        string temp = AtomicFile.TempName(pointer);
        try
        {
            try
            {
                File.CreateSymbolicLink(temp, relative);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                File.Copy(blob, temp); // no symlinks here (for example Windows without developer mode)
            }
            File.Move(temp, pointer, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp) || new FileInfo(temp).LinkTarget != null) File.Delete(temp);
        }
        return pointer;
    }

    static bool IsLinkTo(string pointer, string relativeTarget)
    {
        var info = new FileInfo(pointer);
        return info.LinkTarget == relativeTarget && File.Exists(pointer);
    }

    /// <summary>Takes the per-blob lock, waiting while another process or thread holds it.</summary>
    public BlobLock AcquireLock(RepoId repo, string etag, TimeSpan timeout, Action<string>? onWait = null, CancellationToken cancel = default)
    {
        string path = LockPath(repo, etag);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var deadline = DateTime.UtcNow + timeout;
        bool told = false;
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            try
            {
                // FileShare.None is an exclusive advisory lock (flock on Unix), released when the handle closes or the process dies.
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                return new BlobLock(stream);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                if (!told)
                {
                    onWait?.Invoke($"waiting for another download of the same file ({path})");
                    told = true;
                }
                cancel.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(200));
            }
            catch (IOException e)
            {
                throw new HubException($"Timed out after {timeout} waiting for the lock {path} held by another download.", e);
            }
        }
    }

    /// <summary>Every model repository in the cache, with what it holds.</summary>
    public IReadOnlyList<CachedRepo> List()
    {
        if (!Directory.Exists(Root)) return Array.Empty<CachedRepo>();
        var repos = new List<CachedRepo>();
        foreach (var dir in Directory.EnumerateDirectories(Root, "models--*").OrderBy(d => d, StringComparer.Ordinal))
        {
            var id = RepoId.FromCacheFolderName(Path.GetFileName(dir));
            if (id == null) continue;
            repos.Add(Describe(id));
        }
        return repos;
    }

    public CachedRepo Describe(RepoId id)
    {
        string dir = RepoFolder(id);
        var refs = new Dictionary<string, string>(StringComparer.Ordinal);
        string refsDir = Path.Combine(dir, "refs");
        if (Directory.Exists(refsDir))
            foreach (var f in Directory.EnumerateFiles(refsDir, "*", SearchOption.AllDirectories))
            {
                string name = Path.GetRelativePath(refsDir, f).Replace(Path.DirectorySeparatorChar, '/');
                refs[name] = File.ReadAllText(f).Trim();
            }
        var snapshots = new List<CachedSnapshot>();
        string snapDir = Path.Combine(dir, "snapshots");
        long copies = 0;
        if (Directory.Exists(snapDir))
            foreach (var s in Directory.EnumerateDirectories(snapDir).OrderBy(d => d, StringComparer.Ordinal))
            {
                var files = new List<CachedFile>();
                foreach (var f in Directory.EnumerateFiles(s, "*", SearchOption.AllDirectories))
                {
                    var info = new FileInfo(f);
                    bool isLink = info.LinkTarget != null;
                    long size = File.Exists(f) ? (isLink ? new FileInfo(info.ResolveLinkTarget(true)!.FullName).Length : info.Length) : -1;
                    if (!isLink && size > 0) copies += size;
                    files.Add(new CachedFile(Path.GetRelativePath(s, f).Replace(Path.DirectorySeparatorChar, '/'), size));
                }
                snapshots.Add(new CachedSnapshot(Path.GetFileName(s), files.OrderBy(f => f.Path, StringComparer.Ordinal).ToList()));
            }
        long blobs = 0, incomplete = 0;
        string blobDir = Path.Combine(dir, "blobs");
        if (Directory.Exists(blobDir))
            foreach (var b in Directory.EnumerateFiles(blobDir))
            {
                long len = new FileInfo(b).Length;
                if (b.EndsWith(".incomplete", StringComparison.Ordinal)) incomplete += len;
                else blobs += len;
            }
        return new CachedRepo(id, dir, refs, snapshots, blobs + copies, incomplete);
    }
}

/// <summary>An exclusive lock on one blob; dispose to release.</summary>
public sealed class BlobLock : IDisposable
{
    readonly FileStream _stream;
    internal BlobLock(FileStream stream) => _stream = stream;
    public void Dispose() => _stream.Dispose();
}

public sealed record CachedFile(string Path, long SizeBytes);

public sealed record CachedSnapshot(string Commit, IReadOnlyList<CachedFile> Files);

/// <summary>One <c>models--owner--name</c> folder: its refs, snapshots, bytes on disk and bytes of unfinished downloads.</summary>
public sealed record CachedRepo(RepoId Id, string Folder, IReadOnlyDictionary<string, string> Refs, IReadOnlyList<CachedSnapshot> Snapshots, long SizeOnDisk, long IncompleteBytes);

/// <summary>Writes that appear all at once: a temporary file in the same folder, then a rename.</summary>
internal static class AtomicFile
{
    public static string TempName(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    public static void WriteAllText(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = TempName(path);
        try
        {
            File.WriteAllText(temp, text);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
