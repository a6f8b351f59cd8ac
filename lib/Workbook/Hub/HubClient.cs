using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Workbook.Hub;

/// <summary>A file listed in a repository revision.</summary>
public sealed record RepoFile(string Path, long? Size);

/// <summary>A repository at one commit: <c>GET {endpoint}/api/models/{repo}/revision/{revision}</c>.</summary>
public sealed record RepoRevision(RepoId Repo, string Commit, IReadOnlyList<RepoFile> Files)
{
    public bool Has(string path) => Files.Any(f => f.Path == path);
}

/// <summary>
/// What a <c>HEAD {endpoint}/{repo}/resolve/{revision}/{file}</c> reports: the commit, the ETag of the content
/// (<c>X-Linked-Etag</c> for LFS files, which is their sha256; else <c>ETag</c>, the git blob sha1), its size
/// (<c>X-Linked-Size</c>, else <c>Content-Length</c>) and where to GET it (a CDN for LFS files).
/// </summary>
/// <remarks><paramref name="WeakEtag"/>: the ETag was a weak validator (<c>W/"..."</c>), which need not be a checksum of the bytes.</remarks>
public sealed record RemoteFile(string File, string Commit, string Etag, long Size, Uri Location, bool WeakEtag = false);

/// <summary>The hub's HTTP protocol, as used by HuggingFace's own clients. Knows nothing about the cache.</summary>
public sealed class HubClient : IDisposable
{
    readonly HttpClient _http;
    readonly HubOptions _options;
    readonly Uri _endpoint;

    public HubClient(HubOptions options, HttpMessageHandler? handler = null)
    {
        _options = options;
        if (!Uri.TryCreate(options.Endpoint.TrimEnd('/') + "/", UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new HubException($"Hub endpoint '{Util.ControlCharacters.Quote(options.DisplayEndpoint, 200)}' is not an http(s) address (check HF_ENDPOINT).");
        _endpoint = endpoint;
        // Redirects are followed by hand: only relative ones (renamed repositories) on HEAD, and the token never leaves the hub's host.
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(30) })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("workbook", "1.0"));
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Largest answer of the model API read (a repository's file list is kilobytes; an endless answer must not fill memory).</summary>
    public const long MaxApiAnswerBytes = 16L << 20;

    /// <summary>An address as it may appear in a message: user info (a password in HF_ENDPOINT) and the token removed.</summary>
    string Show(Uri uri) => _options.Redact(uri.ToString());

    string Show(string text) => _options.Redact(text);

    /// <summary>A redirect target, resolved against the request, if it is an http(s) address; anything else (file:, ftp:, data:) is refused.</summary>
    Uri RedirectTarget(Uri from, Uri location)
    {
        var next = location.IsAbsoluteUri ? location : new Uri(from, location);
        if (next.Scheme is not ("http" or "https"))
            throw new HubException($"{Show(from)}: the server redirects to '{Util.ControlCharacters.Quote(Show(next), 200)}', which is not an http(s) address; refusing to follow it.");
        return next;
    }

    static string EscapePath(string path) => string.Join("/", path.Split('/').Select(Uri.EscapeDataString));

    Uri RevisionUri(RepoId repo, string revision) =>
        new(_endpoint, $"api/models/{repo.Value}/revision/{Uri.EscapeDataString(revision)}");

    public Uri ResolveUri(RepoId repo, string revision, string file) =>
        new(_endpoint, $"{repo.Value}/resolve/{Uri.EscapeDataString(revision)}/{EscapePath(file)}");

    HttpRequestMessage Request(HttpMethod method, Uri uri)
    {
        var req = new HttpRequestMessage(method, uri);
        if (_options.Token != null && uri.Host == _endpoint.Host && uri.Port == _endpoint.Port)
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.Token);
        return req;
    }

    async Task<HttpResponseMessage> SendAsync(HttpRequestMessage req, HttpCompletionOption completion, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(_options.ReadTimeout);
        try
        {
            return await _http.SendAsync(req, completion, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new TransientHubException($"{req.Method} {Show(req.RequestUri!)}: no answer within {_options.ReadTimeout.TotalSeconds:0} s.");
        }
        catch (HttpRequestException e)
        {
            throw new TransientHubException($"{req.Method} {Show(req.RequestUri!)}: {Show(e.Message)}", e);
        }
    }

    /// <summary>The whole body of a (small) answer, refused past <paramref name="maxBytes"/> and when it stalls.</summary>
    async Task<byte[]> ReadBodyAsync(HttpResponseMessage resp, Uri uri, long maxBytes, CancellationToken cancel)
    {
        if (resp.Content.Headers.ContentLength is long declared && declared > maxBytes)
            throw new HubException($"{Show(uri)}: the answer is {declared:N0} bytes, more than the {maxBytes:N0} a model listing can need.");
        await using var body = await resp.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false);
        using var result = new MemoryStream();
        var buffer = new byte[81920];
        while (true)
        {
            int n = await ReadAsync(body, buffer, cancel).ConfigureAwait(false);
            if (n == 0) return result.ToArray();
            if (result.Length + n > maxBytes)
                throw new HubException($"{Show(uri)}: the answer runs past {maxBytes:N0} bytes, more than a model listing can need; not read further.");
            result.Write(buffer, 0, n);
        }
    }

    /// <summary>The commit a revision points at and the files it holds.</summary>
    public async Task<RepoRevision> GetRevisionAsync(RepoId repo, string revision, CancellationToken cancel = default)
    {
        var uri = RevisionUri(repo, revision);
        HttpResponseMessage resp;
        for (int hops = 0; ; hops++)
        {
            using var req = Request(HttpMethod.Get, uri);
            resp = await SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cancel).ConfigureAwait(false);
            // A renamed repository answers with a redirect on the hub's own host.
            if ((int)resp.StatusCode is >= 300 and < 400 && resp.Headers.Location is { } loc && hops < 5)
            {
                var next = RedirectTarget(uri, loc);
                if (next.Host == _endpoint.Host && next.Port == _endpoint.Port)
                {
                    resp.Dispose();
                    uri = next;
                    continue;
                }
            }
            break;
        }
        using var _ = resp;
        if (!resp.IsSuccessStatusCode) throw StatusError(resp, repo, null);
        var json = await ReadBodyAsync(resp, uri, MaxApiAnswerBytes, cancel).ConfigureAwait(false);
        return ParseRevision(json, repo, Show(uri));
    }

    /// <summary>
    /// Reads the model API's answer: an object with the commit hash <c>sha</c> and <c>siblings</c>, each with an
    /// <c>rfilename</c> and perhaps a <c>size</c>. Anything else is a <see cref="HubException"/> saying what was wrong.
    /// </summary>
    internal static RepoRevision ParseRevision(byte[] json, RepoId repo, string where)
    {
        using var doc = Util.JsonInput.Parse(json, $"{where}: the answer", (m, e) => new HubException(m, e), maxDepth: 32);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new HubException($"{where}: the answer is a JSON {Kind(root)}, not the object the model API returns; is the endpoint a HuggingFace hub?");
        if (!root.TryGetProperty("sha", out var sha) || sha.ValueKind != JsonValueKind.String || !HubCache.CommitPattern().IsMatch(sha.GetString()!))
            throw new HubException($"{where}: the answer has no commit hash 'sha'.");
        var files = new List<RepoFile>();
        if (root.TryGetProperty("siblings", out var siblings))
        {
            if (siblings.ValueKind != JsonValueKind.Array) throw new HubException($"{where}: 'siblings' is a JSON {Kind(siblings)}, not the list of files.");
            foreach (var s in siblings.EnumerateArray())
            {
                if (s.ValueKind != JsonValueKind.Object || !s.TryGetProperty("rfilename", out var name) || name.ValueKind != JsonValueKind.String) continue;
                long? size = null;
                if (s.TryGetProperty("size", out var sz) && sz.ValueKind != JsonValueKind.Null)
                    size = sz.ValueKind == JsonValueKind.Number && sz.TryGetInt64(out long n) && n >= 0 ? n
                        : throw new HubException($"{where}: file '{Util.ControlCharacters.Quote(name.GetString(), 100)}' is listed with size {Util.ControlCharacters.Quote(sz.GetRawText(), 40)}, which is not a byte count.");
                files.Add(new RepoFile(name.GetString()!, size));
            }
        }
        return new RepoRevision(repo, sha.GetString()!, files);
    }

    static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();

    /// <summary>HEAD on the resolve address: commit, ETag, size and download location of one file.</summary>
    public async Task<RemoteFile> GetFileMetadataAsync(RepoId repo, string revision, string file, CancellationToken cancel = default)
    {
        var uri = ResolveUri(repo, revision, file);
        for (int hops = 0; ; hops++)
        {
            using var req = Request(HttpMethod.Head, uri);
            req.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity")); // sizes of the raw bytes
            using var resp = await SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cancel).ConfigureAwait(false);
            int status = (int)resp.StatusCode;
            Uri? location = resp.Headers.Location is { } loc ? RedirectTarget(uri, loc) : null;
            bool redirect = status is >= 300 and < 400 && location != null;
            // A redirect to the same host is a renamed repository: follow it. One to another host is the CDN holding an LFS file.
            if (redirect && location!.Host == _endpoint.Host && location.Port == _endpoint.Port && Header(resp, "X-Linked-Etag") == null)
            {
                if (hops >= 5) throw new HubException($"{Show(ResolveUri(repo, revision, file))}: too many redirects.");
                uri = location;
                continue;
            }
            if (!resp.IsSuccessStatusCode && !redirect) throw StatusError(resp, repo, file);
            string? commit = Header(resp, "X-Repo-Commit");
            if (commit == null || !HubCache.CommitPattern().IsMatch(commit))
                throw new HubException($"{Show(uri)}: the answer has no X-Repo-Commit header; '{_options.DisplayEndpoint}' does not look like a HuggingFace hub.");
            string? rawEtag = Header(resp, "X-Linked-Etag") ?? Header(resp, "ETag");
            string? etag = NormalizeEtag(rawEtag);
            if (etag == null)
                throw new HubException($"{Show(uri)}: the answer has no ETag, so the download could not be verified.");
            string? sizeText = Header(resp, "X-Linked-Size") ?? resp.Content.Headers.ContentLength?.ToString();
            if (sizeText == null)
                throw new HubException($"{Show(uri)}: the answer does not state the file's size.");
            if (!long.TryParse(sizeText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long size))
                throw new HubException($"{Show(uri)}: the answer states the size '{Util.ControlCharacters.Quote(sizeText, 40)}' for '{file}', which is not a byte count.");
            return new RemoteFile(file, commit, etag, size, redirect ? location! : uri, rawEtag!.TrimStart().StartsWith("W/", StringComparison.Ordinal));
        }
    }

    static string? Header(HttpResponseMessage resp, string name) =>
        resp.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault()
        : resp.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    /// <summary>Strips a weak-validator prefix and quotes: <c>W/"abc"</c> becomes <c>abc</c>.</summary>
    public static string? NormalizeEtag(string? etag)
    {
        if (string.IsNullOrWhiteSpace(etag)) return null;
        string e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal)) e = e[2..];
        return e.Trim('"');
    }

    /// <summary>GET from <paramref name="from"/> bytes on (HTTP Range when positive). The caller disposes the response.</summary>
    public async Task<HttpResponseMessage> GetContentAsync(Uri location, long from, CancellationToken cancel)
    {
        var uri = location;
        for (int hops = 0; ; hops++)
        {
            using var req = Request(HttpMethod.Get, uri);
            req.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (from > 0) req.Headers.Range = new RangeHeaderValue(from, null);
            var resp = await SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cancel).ConfigureAwait(false);
            int status = (int)resp.StatusCode;
            if (status is >= 300 and < 400 && resp.Headers.Location is { } loc && hops < 5)
            {
                try
                {
                    uri = RedirectTarget(uri, loc);
                }
                finally
                {
                    resp.Dispose();
                }
                continue;
            }
            return resp;
        }
    }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes, failing as transient when nothing arrives within the read timeout.</summary>
    public Task<int> ReadAsync(Stream body, Memory<byte> buffer, CancellationToken cancel) => ReadAsync(body, buffer, _options.ReadTimeout, cancel);

    /// <summary>As <see cref="ReadAsync(Stream, Memory{byte}, CancellationToken)"/> with a given time limit for this read.</summary>
    public async Task<int> ReadAsync(Stream body, Memory<byte> buffer, TimeSpan timeLimit, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(timeLimit);
        try
        {
            return await body.ReadAsync(buffer, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new ReadTimeoutException($"no data for {timeLimit.TotalSeconds:0.#} s.");
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw new TransientHubException($"connection lost: {Show(e.Message)}", e);
        }
    }

    internal HubException StatusError(HttpResponseMessage resp, RepoId repo, string? file)
    {
        int status = (int)resp.StatusCode;
        string what = file == null ? $"repository '{repo}'" : $"'{file}' in repository '{repo}'";
        string where = _options.DisplayEndpoint;
        return resp.StatusCode switch
        {
            HttpStatusCode.NotFound when file != null => new HubException($"The hub at {where} has no file {what} (HTTP 404)."),
            HttpStatusCode.NotFound or HttpStatusCode.Unauthorized => new HubException(
                $"The hub at {where} has no {what}, or it is private or gated (HTTP {status}). Check the name; for gated models set HF_TOKEN."),
            HttpStatusCode.Forbidden => new HubException($"Access to {what} at {where} was refused (HTTP 403). For gated models accept the terms on the hub and set HF_TOKEN."),
            _ when status >= 500 || status == 429 => new TransientHubException($"The hub at {where} answered HTTP {status} for {what}."),
            _ => new HubException($"The hub at {where} answered HTTP {status} for {what}."),
        };
    }
}

/// <summary>A failure worth retrying: connection lost, timeout, server error.</summary>
public class TransientHubException : HubException
{
    public TransientHubException(string message) : base(message) { }
    public TransientHubException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Nothing arrived within a read's time limit (transient: the download is retried, resuming).</summary>
public sealed class ReadTimeoutException : TransientHubException
{
    public ReadTimeoutException(string message) : base(message) { }
}
