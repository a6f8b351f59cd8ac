using System.Text.RegularExpressions;
using Workbook.Util;

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
/// <para>
/// The cache may hold what someone else put there, so nothing in it is trusted: files are read only when they are
/// regular files of a bounded size that resolve inside the cache, folders are walked without entering linked folders
/// and with a bound on the entries, and nothing is written through a link or into a folder that resolves elsewhere.
/// </para>
/// </summary>
public sealed partial class HubCache
{
    public string Root { get; }

    public HubCache(string root) => Root = Path.GetFullPath(root);

    /// <summary>Most entries walked in one folder of a repository (a real snapshot has a few dozen files).</summary>
    public const int MaxWalkEntries = 100_000;

    /// <summary>A ref holds a 40-character commit hash; anything much longer is not one.</summary>
    const long MaxRefBytes = 1024;

    /// <summary>
    /// Throws unless <paramref name="path"/>'s folder resolves inside the cache: a folder of the cache replaced by a
    /// link to elsewhere (a planted snapshot folder, say) must not receive the workbook's writes.
    /// </summary>
    internal void EnsureInside(string path)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!FileSystemEntries.IsInside(folder, Root))
            throw new HubException($"{path}: the folder resolves to {SafeRealPath(folder)}, outside the hub cache {Root} (a link planted in the cache?); nothing is written there. Remove it and pull again.");
    }

    /// <summary>Creates the folder that will hold <paramref name="path"/> and checks that it is inside the cache.</summary>
    internal void PrepareFolderFor(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        EnsureInside(path);
    }

    static string SafeRealPath(string path)
    {
        try
        {
            return FileSystemEntries.RealPath(path);
        }
        catch (IOException)
        {
            return "(a link loop)";
        }
    }

    /// <summary>Whether <paramref name="path"/> names a regular file inside the cache once its links are followed.</summary>
    internal bool IsFileInside(string path) => FileSystemEntries.TargetKindOf(path) == EntryKind.RegularFile && FileSystemEntries.IsInside(path, Root);

    /// <summary>A blob is complete when it is a regular file under its final name (a link there is not a blob).</summary>
    public bool HasBlob(RepoId repo, string blobName) => FileSystemEntries.KindOf(BlobPath(repo, blobName)) == EntryKind.RegularFile && FileSystemEntries.IsInside(BlobPath(repo, blobName), Root);

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
        return ReadRef(RefPath(repo, revision));
    }

    /// <summary>The commit a ref file names, or null when it is missing, not a small regular file inside the cache, or not a commit hash.</summary>
    string? ReadRef(string refPath)
    {
        if (FileSystemEntries.KindOf(refPath) == EntryKind.Missing) return null;
        try
        {
            string commit = SafeRead.ReadAllText(refPath, MaxRefBytes, m => new HubException(m), insideFolder: Root).Trim();
            return CommitPattern().IsMatch(commit) ? commit : null;
        }
        catch (HubException)
        {
            return null; // unreadable (a FIFO, /dev/zero, a link out of the cache, a huge file): as if there were no ref
        }
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
        if (ReadRef(path) == commit && FileSystemEntries.KindOf(path) == EntryKind.RegularFile) return;
        PrepareFolderFor(path);
        AtomicFile.WriteAllText(path, commit); // replaces whatever was there (a link is replaced, not followed)
    }

    /// <summary>
    /// What makes a cached snapshot unusable, or null: its folder must be a real folder of the cache (not a link to
    /// elsewhere), and every entry must lead to a file inside the repository's folder (its blob, or a copy).
    /// </summary>
    public string? SnapshotProblem(RepoId repo, string commit)
    {
        string folder = SnapshotFolder(repo, commit);
        if (FileSystemEntries.KindOf(folder) != EntryKind.Directory || !FileSystemEntries.IsInside(folder, RepoFolder(repo)))
            return $"{folder} (it is a link to {SafeRealPath(folder)}, not a folder of the cache)";
        foreach (var name in SafeRead.FilesUnder(folder, MaxWalkEntries, m => new HubException(m)))
        {
            string entry = Path.Combine(folder, name);
            if (FileSystemEntries.TargetKindOf(entry) == EntryKind.Missing) continue; // dangling: simply missing
            if (!FileSystemEntries.IsInside(entry, RepoFolder(repo)) || FileSystemEntries.TargetKindOf(entry) != EntryKind.RegularFile)
                return $"{name} (it leads to {SafeRealPath(entry)}, which is not a file of the cache)";
        }
        return null;
    }

    /// <summary>Path of <paramref name="file"/> in a snapshot, or null when it is not there (or its blob is gone).</summary>
    public string? TryGetSnapshotFile(RepoId repo, string commit, string file)
    {
        string path = Path.Combine(SnapshotFolder(repo, commit), ToLocalPath(file));
        // The entry must lead to a regular file inside this repository's folder (its blob, or a copy where links fail).
        return FileSystemEntries.TargetKindOf(path) == EntryKind.RegularFile && FileSystemEntries.IsInside(path, RepoFolder(repo)) ? path : null;
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
        PrepareFolderFor(pointer);
        string relative = Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob);
        if (IsLinkTo(pointer, relative)) return pointer;
        string temp = AtomicFile.TempName(pointer);
        try
        {
            try
            {
                File.CreateSymbolicLink(temp, relative); // fails, rather than following, if anything is at the temporary name
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                File.Copy(blob, temp, overwrite: false); // no symlinks here (for example Windows without developer mode)
            }
            File.Move(temp, pointer, overwrite: true);
        }
        finally
        {
            if (FileSystemEntries.KindOf(temp) != EntryKind.Missing) File.Delete(temp);
        }
        return pointer;
    }

    static bool IsLinkTo(string pointer, string relativeTarget)
    {
        var info = new FileInfo(pointer);
        return info.LinkTarget == relativeTarget && FileSystemEntries.TargetKindOf(pointer) == EntryKind.RegularFile;
    }

    /// <summary>Takes the per-blob lock, waiting while another process or thread holds it.</summary>
    public BlobLock AcquireLock(RepoId repo, string etag, TimeSpan timeout, Action<string>? onWait = null, CancellationToken cancel = default)
    {
        string path = LockPath(repo, etag);
        PrepareFolderFor(path);
        // A lock file is only ever a regular file of ours: a link planted there would be opened (and created) at its target.
        if (FileSystemEntries.KindOf(path) is EntryKind.SymbolicLink or EntryKind.Other) File.Delete(path);
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
        int seen = 0;
        foreach (var dir in Directory.EnumerateDirectories(Root, "models--*").OrderBy(d => d, StringComparer.Ordinal))
        {
            if (++seen > MaxWalkEntries) throw new HubException($"{Root}: holds more than {MaxWalkEntries:N0} model folders; refusing to list them.");
            var id = RepoId.FromCacheFolderName(Path.GetFileName(dir));
            if (id == null || FileSystemEntries.KindOf(dir) != EntryKind.Directory) continue; // a link in place of a repository folder is not listed
            repos.Add(Describe(id));
        }
        return repos;
    }

    public CachedRepo Describe(RepoId id)
    {
        string dir = RepoFolder(id);
        HubException Refused(string message) => new(message);
        var refs = new Dictionary<string, string>(StringComparer.Ordinal);
        string refsDir = Path.Combine(dir, "refs");
        foreach (var name in SafeRead.FilesUnder(refsDir, MaxWalkEntries, Refused))
            if (ReadRef(Path.Combine(refsDir, name)) is { } commit) refs[name] = commit;
        var snapshots = new List<CachedSnapshot>();
        string snapDir = Path.Combine(dir, "snapshots");
        long copies = 0;
        if (FileSystemEntries.KindOf(snapDir) == EntryKind.Directory)
            foreach (var s in Directory.EnumerateDirectories(snapDir).Take(MaxWalkEntries).OrderBy(d => d, StringComparer.Ordinal))
            {
                if (FileSystemEntries.KindOf(s) != EntryKind.Directory) continue; // a snapshot folder that is a link leads out of the cache
                var files = new List<CachedFile>();
                foreach (var name in SafeRead.FilesUnder(s, MaxWalkEntries, Refused))
                {
                    string f = Path.Combine(s, name);
                    bool isLink = FileSystemEntries.KindOf(f) == EntryKind.SymbolicLink;
                    long size = IsFileInside(f) ? new FileInfo(FileSystemEntries.RealPath(f)).Length : -1;
                    if (!isLink && size > 0) copies += size;
                    files.Add(new CachedFile(name, size));
                }
                snapshots.Add(new CachedSnapshot(Path.GetFileName(s), files));
            }
        long blobs = 0, incomplete = 0;
        string blobDir = Path.Combine(dir, "blobs");
        if (FileSystemEntries.KindOf(blobDir) == EntryKind.Directory)
            foreach (var b in Directory.EnumerateFiles(blobDir).Take(MaxWalkEntries))
            {
                if (FileSystemEntries.KindOf(b) != EntryKind.RegularFile) continue;
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
