using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Workbook.Tests.Support;

/// <summary>
/// A stand-in for the HuggingFace hub on 127.0.0.1, speaking just enough HTTP/1.1 (one request per connection)
/// for the workbook's client: <c>GET /api/models/{repo}/revision/{rev}</c>, <c>HEAD|GET /{repo}/resolve/{rev}/{file}</c>
/// (regular files answer with a git-sha1 ETag; LFS files redirect, with <c>X-Linked-Etag</c> = sha256 and
/// <c>X-Linked-Size</c>, to a second listener playing the CDN, which honours <c>Range</c>). Each file can be
/// told to misbehave: drop the connection after some bytes, pause at a byte until released, report a wrong size
/// or checksum, ignore ranges, or trickle its bytes slowly. Every request is logged.
/// </summary>
public sealed class FakeHub : IDisposable
{
    readonly TcpListener _hub = new(IPAddress.Loopback, 0);
    readonly TcpListener _cdn = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource _stop = new();
    readonly ConcurrentDictionary<string, FakeRepo> _repos = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, string> _renamed = new(StringComparer.Ordinal);
    readonly List<Task> _loops = new();

    public ConcurrentQueue<LoggedRequest> Requests { get; } = new();

    public FakeHub()
    {
        _hub.Start();
        _cdn.Start();
        _loops.Add(AcceptLoop(_hub, isCdn: false));
        _loops.Add(AcceptLoop(_cdn, isCdn: true));
    }

    public string Endpoint => $"http://127.0.0.1:{((IPEndPoint)_hub.LocalEndpoint).Port}";
    string CdnBase => $"http://127.0.0.1:{((IPEndPoint)_cdn.LocalEndpoint).Port}";

    public FakeRepo AddRepo(string repoId)
    {
        var repo = new FakeRepo(repoId, Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repoId + Guid.NewGuid()))));
        _repos[repoId] = repo;
        return repo;
    }

    /// <summary>Requests for <paramref name="oldId"/> are redirected (307, same host) to <paramref name="newId"/>, as the hub does for renamed repositories.</summary>
    public void Rename(string oldId, string newId) => _renamed[oldId] = newId;

    /// <summary>A repository holding every file of <paramref name="folder"/>; files over <paramref name="lfsThreshold"/> bytes are LFS files.</summary>
    public FakeRepo AddFolder(string repoId, string folder, long lfsThreshold = 10_000)
    {
        var repo = AddRepo(repoId);
        foreach (var f in Directory.EnumerateFiles(folder))
        {
            var bytes = File.ReadAllBytes(f);
            repo.Add(Path.GetFileName(f), bytes, lfs: bytes.Length > lfsThreshold);
        }
        return repo;
    }

    /// <summary>GET requests that carried a file's bytes (resolve for regular files, the CDN for LFS ones).</summary>
    public IReadOnlyList<LoggedRequest> ContentRequests(string file) =>
        Requests.Where(r => r.Method == "GET" && r.File == file && (r.IsCdn || r.Path.Contains("/resolve/"))).ToList();

    public void Dispose()
    {
        _stop.Cancel();
        _hub.Stop();
        _cdn.Stop();
        foreach (var repo in _repos.Values)
            foreach (var f in repo.Files.Values)
                f.ReleasePause();
        try { Task.WaitAll(_loops.ToArray(), TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }

    async Task AcceptLoop(TcpListener listener, bool isCdn)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { return; }
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try { await Serve(client, isCdn); }
                    catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException) { }
                }
            });
        }
    }

    async Task Serve(TcpClient client, bool isCdn)
    {
        var stream = client.GetStream();
        var head = await ReadHead(stream);
        if (head == null) return;
        var lines = head.Split("\r\n");
        var parts = lines[0].Split(' ');
        string method = parts[0], target = WebUtility.UrlDecode(parts[1].Split('?')[0]);
        var headers = lines.Skip(1).Where(l => l.Contains(':'))
            .ToDictionary(l => l[..l.IndexOf(':')].Trim().ToLowerInvariant(), l => l[(l.IndexOf(':') + 1)..].Trim());
        headers.TryGetValue("range", out var range);
        headers.TryGetValue("authorization", out var auth);

        if (isCdn)
        {
            // /cdn/{repo}/{file}
            var rest = target["/cdn/".Length..];
            var (repo, file) = FindRepoAndFile(rest);
            Requests.Enqueue(new LoggedRequest(method, target, file, range, auth, IsCdn: true));
            if (repo == null || !repo.Files.TryGetValue(file!, out var ff)) { await Simple(stream, 404, "not found"); return; }
            await SendContent(stream, method, ff, range, extraHeaders: "");
            return;
        }

        if (target.StartsWith("/api/models/", StringComparison.Ordinal))
        {
            Requests.Enqueue(new LoggedRequest(method, target, null, range, auth, IsCdn: false));
            string rest = target["/api/models/".Length..];
            int at = rest.LastIndexOf("/revision/", StringComparison.Ordinal);
            string repoId = at < 0 ? rest : rest[..at];
            if (_renamed.TryGetValue(repoId, out var renamedTo))
            {
                await WriteAll(stream, $"HTTP/1.1 307 Temporary Redirect\r\nLocation: /api/models/{renamedTo}{(at < 0 ? "" : rest[at..])}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            if (!_repos.TryGetValue(repoId, out var repo)) { await Simple(stream, 401, "{\"error\":\"Repository not found\"}"); return; }
            if (repo.EndlessApiAnswer)
            {
                // Claims 10 GB and sends '[' forever (until the client hangs up).
                await WriteAll(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n");
                var block = Enumerable.Repeat((byte)'[', 1 << 16).ToArray();
                while (!_stop.IsCancellationRequested) await stream.WriteAsync(block);
                return;
            }
            if (repo.ApiAnswer is { } raw) { await Simple(stream, 200, raw, "application/json"); return; }
            var json = JsonSerializer.Serialize(new
            {
                id = repo.Id,
                sha = repo.Commit,
                siblings = repo.Files.Keys.OrderBy(k => k, StringComparer.Ordinal).Select(k => new { rfilename = k }).ToArray(),
            });
            await Simple(stream, 200, json, "application/json");
            return;
        }

        int resolve = target.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve > 0)
        {
            string repoId = target[1..resolve];
            string after = target[(resolve + "/resolve/".Length)..];
            int slash = after.IndexOf('/');
            string rev = after[..slash], file = after[(slash + 1)..];
            Requests.Enqueue(new LoggedRequest(method, target, file, range, auth, IsCdn: false));
            if (_renamed.TryGetValue(repoId, out var renamed))
            {
                await WriteAll(stream, $"HTTP/1.1 307 Temporary Redirect\r\nLocation: /{renamed}/resolve/{rev}/{file}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            if (!_repos.TryGetValue(repoId, out var repo)) { await Simple(stream, 401, "Repository not found"); return; }
            if (rev != "main" && rev != repo.Commit) { await Simple(stream, 404, "Revision not found"); return; }
            if (!repo.Files.TryGetValue(file, out var f)) { await Simple(stream, 404, "Entry not found", extra: $"X-Repo-Commit: {repo.Commit}\r\n"); return; }
            if (method == "HEAD" && f.TakeServerError()) { await Simple(stream, 503, "Service Unavailable"); return; }
            string common = $"X-Repo-Commit: {repo.Commit}\r\n";
            string Etag(string real) => f.WeakEtag ? $"W/\"{f.ReportedEtag ?? real}\"" : $"\"{f.ReportedEtag ?? real}\"";
            string size = f.ReportedSizeText ?? (f.ReportedSize ?? f.Content.Length).ToString();
            if (f.Lfs)
            {
                string location = f.RedirectTo ?? $"{CdnBase}/cdn/{repo.Id}/{file}";
                string extra = common + $"X-Linked-Etag: {Etag(f.Sha256)}\r\nX-Linked-Size: {size}\r\nETag: \"{f.GitSha1}\"\r\nLocation: {location}\r\n";
                await WriteAll(stream, $"HTTP/1.1 302 Found\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            string etag = $"ETag: {Etag(f.GitSha1)}\r\n";
            if (method == "HEAD")
            {
                await WriteAll(stream, $"HTTP/1.1 200 OK\r\n{common}{etag}Content-Length: {(f.ReportedSizeText != null ? f.Content.Length : size)}\r\n" +
                                       (f.ReportedSizeText != null ? $"X-Linked-Size: {size}\r\n" : "") + "Connection: close\r\n\r\n");
                return;
            }
            await SendContent(stream, method, f, range, common + etag);
            return;
        }
        Requests.Enqueue(new LoggedRequest(method, target, null, range, auth, IsCdn: false));
        await Simple(stream, 404, "unknown path");
    }

    (FakeRepo?, string?) FindRepoAndFile(string rest)
    {
        foreach (var repo in _repos.Values.OrderByDescending(r => r.Id.Length))
            if (rest.StartsWith(repo.Id + "/", StringComparison.Ordinal))
                return (repo, rest[(repo.Id.Length + 1)..]);
        return (null, null);
    }

    static async Task SendContent(NetworkStream stream, string method, FakeFile f, string? range, string extraHeaders)
    {
        long start = 0;
        bool partial = false;
        if (range != null && !f.IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal))
        {
            start = long.Parse(range["bytes=".Length..].TrimEnd('-').Split('-')[0]);
            if (start >= f.Content.Length)
            {
                await WriteAll(stream, $"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{f.Content.Length}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            partial = true;
        }
        long length = f.Content.Length - start;
        string status = partial ? "206 Partial Content" : "200 OK";
        string contentRange = partial ? $"Content-Range: bytes {start}-{f.Content.Length - 1}/{f.Content.Length}\r\n" : "";
        await WriteAll(stream, $"HTTP/1.1 {status}\r\n{extraHeaders}{contentRange}Content-Length: {length}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n");
        if (method == "HEAD") return;

        long stopAt = f.Content.Length;
        bool drop = false;
        if (f.TakeDrop() is long dropAt && dropAt > start)
        {
            stopAt = dropAt;
            drop = true;
        }
        long pos = start;
        const int chunk = 16 * 1024;
        while (pos < stopAt)
        {
            if (f.PauseAt is long pauseAt && pos <= pauseAt && pauseAt < pos + chunk)
            {
                int before = (int)(pauseAt - pos);
                if (before > 0) await stream.WriteAsync(f.Content.AsMemory((int)pos, before));
                await stream.FlushAsync();
                pos = pauseAt;
                f.SignalPaused();
                await f.WaitForRelease();
                if (pos >= stopAt) break;
            }
            int n = (int)Math.Min(f.TrickleDelay > TimeSpan.Zero ? 1 : chunk, stopAt - pos);
            await stream.WriteAsync(f.Content.AsMemory((int)pos, n));
            pos += n;
            if (f.TrickleDelay > TimeSpan.Zero)
            {
                await stream.FlushAsync();
                await Task.Delay(f.TrickleDelay);
            }
            if (f.ChunkDelay > TimeSpan.Zero) await Task.Delay(f.ChunkDelay);
        }
        await stream.FlushAsync();
        if (drop) stream.Socket.Close(0); // reset: the client sees the connection drop mid-body
    }

    static async Task<string?> ReadHead(NetworkStream stream)
    {
        var buffer = new List<byte>();
        var one = new byte[1];
        while (buffer.Count < 64 * 1024)
        {
            int n = await stream.ReadAsync(one);
            if (n == 0) return null;
            buffer.Add(one[0]);
            int c = buffer.Count;
            if (c >= 4 && buffer[c - 4] == '\r' && buffer[c - 3] == '\n' && buffer[c - 2] == '\r' && buffer[c - 1] == '\n')
                return Encoding.ASCII.GetString(buffer.ToArray());
        }
        return null;
    }

    static Task WriteAll(NetworkStream stream, string text) => stream.WriteAsync(Encoding.ASCII.GetBytes(text)).AsTask();

    static async Task Simple(NetworkStream stream, int status, string body, string contentType = "text/plain", string extra = "")
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        await WriteAll(stream, $"HTTP/1.1 {status} X\r\nContent-Type: {contentType}\r\n{extra}Content-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(bytes);
    }
}

public sealed record LoggedRequest(string Method, string Path, string? File, string? Range, string? Authorization, bool IsCdn);

public sealed class FakeRepo
{
    public string Id { get; }
    public string Commit { get; set; }
    public ConcurrentDictionary<string, FakeFile> Files { get; } = new(StringComparer.Ordinal);

    /// <summary>The model API's answer for the repository, as raw text, instead of the real listing.</summary>
    public string? ApiAnswer { get; set; }
    /// <summary>The model API answers with an endless body.</summary>
    public bool EndlessApiAnswer { get; set; }

    public FakeRepo(string id, string commit)
    {
        Id = id;
        Commit = commit;
    }

    public FakeFile Add(string path, byte[] content, bool lfs)
    {
        var f = new FakeFile(content, lfs);
        Files[path] = f;
        return f;
    }

    public FakeFile Add(string path, string text) => Add(path, Encoding.UTF8.GetBytes(text), lfs: false);

    public FakeFile this[string path] => Files[path];
}

/// <summary>One served file, its true checksums, and the faults it should show.</summary>
public sealed class FakeFile
{
    public byte[] Content { get; }
    public bool Lfs { get; }
    public string Sha256 { get; }
    public string GitSha1 { get; }

    /// <summary>Size the hub reports instead of the real one.</summary>
    public long? ReportedSize { get; set; }
    /// <summary>ETag the hub reports instead of the real checksum.</summary>
    public string? ReportedEtag { get; set; }
    /// <summary>Report the ETag as a weak validator, <c>W/"..."</c>.</summary>
    public bool WeakEtag { get; set; }
    /// <summary>Size the hub reports, as raw header text (say "1e30").</summary>
    public string? ReportedSizeText { get; set; }
    /// <summary>Where the hub redirects the download of an LFS file instead of its CDN (say a file: address).</summary>
    public string? RedirectTo { get; set; }
    /// <summary>Send one byte, then wait this long, over and over (a stalled server that never quite stops).</summary>
    public TimeSpan TrickleDelay { get; set; }
    /// <summary>Answer range requests with the whole file (200).</summary>
    public bool IgnoreRange { get; set; }
    /// <summary>Pause between 16 KiB chunks (to make two pulls overlap).</summary>
    public TimeSpan ChunkDelay { get; set; }
    /// <summary>The next <see cref="DropTimes"/> downloads reset the connection once byte <see cref="DropAt"/> was sent.</summary>
    public long DropAt { get; set; }
    public int DropTimes { get; set; }
    /// <summary>The next this-many HEAD requests for the file answer 503 (a hub having a bad moment).</summary>
    public int ServerErrorTimes { get; set; }

    /// <summary>Downloads stop at this byte until <see cref="ReleasePause"/> (a pull "killed" mid-file).</summary>
    public long? PauseAt { get; set; }

    readonly SemaphoreSlim _paused = new(0);
    readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly object _gate = new();

    public FakeFile(byte[] content, bool lfs)
    {
        Content = content;
        Lfs = lfs;
        Sha256 = Convert.ToHexStringLower(SHA256.HashData(content));
        // Git's blob id, computed here independently of the workbook: sha1("blob <size>\0" + content).
        GitSha1 = Convert.ToHexStringLower(SHA1.HashData(Encoding.ASCII.GetBytes($"blob {content.Length}\0").Concat(content).ToArray()));
    }

    internal long? TakeDrop()
    {
        lock (_gate)
        {
            if (DropTimes <= 0) return null;
            DropTimes--;
            return DropAt;
        }
    }

    internal bool TakeServerError()
    {
        lock (_gate)
        {
            if (ServerErrorTimes <= 0) return false;
            ServerErrorTimes--;
            return true;
        }
    }

    internal void SignalPaused() => _paused.Release();
    internal Task WaitForRelease() => _release.Task;

    /// <summary>Waits until a download reached <see cref="PauseAt"/>.</summary>
    public bool WaitUntilPaused(TimeSpan timeout) => _paused.Wait(timeout);

    public void ReleasePause() => _release.TrySetResult();
}
