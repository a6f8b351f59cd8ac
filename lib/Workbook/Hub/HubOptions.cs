namespace Workbook.Hub;

/// <summary>
/// Where models come from and where they are kept. <see cref="FromEnvironment"/> reads the same variables as
/// HuggingFace's Python tools, so checkpoints a researcher already downloaded with them are found and reused.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Base address of the hub (<c>HF_ENDPOINT</c>), without a trailing slash.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>Access token sent as <c>Authorization: Bearer</c> to the hub (<c>HF_TOKEN</c>); never sent to a CDN it redirects to.</summary>
    public string? Token { get; init; }

    /// <summary>The hub cache folder holding <c>models--owner--name</c> folders.</summary>
    public string CacheDir { get; init; } = DefaultCacheDir(Environment.GetEnvironmentVariable);

    /// <summary>Use the cache only; a missing file is an error naming it (<c>HF_HUB_OFFLINE=1</c>).</summary>
    public bool Offline { get; init; }

    /// <summary>Git revision to pull: a branch, a tag or a commit hash.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>How many times one file is tried (resuming where the last try stopped) before a pull fails.</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>Pause before the second try; doubled for each later one.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long to wait for another process that is downloading the same file before giving up.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromHours(2);

    /// <summary>Time allowed without any bytes arriving before a request is abandoned (and retried).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A download is stalled when fewer than <see cref="StallBytes"/> arrive within this time: a server trickling a byte
    /// every few seconds never trips <see cref="ReadTimeout"/>, and would hold a pull forever. A stalled download is
    /// retried, resuming from the bytes kept (<c>WORKBOOK_HUB_STALL_TIMEOUT</c>, in seconds).
    /// </summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Bytes that must arrive within each <see cref="StallTimeout"/> (or the rest of the file, if less).</summary>
    public long StallBytes { get; init; } = 64 * 1024;

    /// <summary>Receives progress of downloads (null: silent).</summary>
    public IDownloadProgress? Progress { get; init; }

    /// <summary>Options from the environment: HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE.</summary>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>Same as <see cref="FromEnvironment()"/> with a given variable lookup (for tests).</summary>
    public static HubOptions FromEnvironment(Func<string, string?> env)
    {
        string? endpoint = NonEmpty(env("HF_ENDPOINT"));
        string? token = NonEmpty(env("HF_TOKEN")) ?? NonEmpty(env("HUGGING_FACE_HUB_TOKEN"));
        var options = new HubOptions
        {
            Endpoint = (endpoint ?? DefaultEndpoint).TrimEnd('/'),
            Token = token,
            CacheDir = DefaultCacheDir(env),
            Offline = IsTrue(env("HF_HUB_OFFLINE")) || IsTrue(env("TRANSFORMERS_OFFLINE")) || IsTrue(env("WORKBOOK_OFFLINE")),
        };
        if (Seconds(env, "WORKBOOK_HUB_STALL_TIMEOUT") is { } stall) options = options with { StallTimeout = stall };
        return options;
    }

    /// <summary>A positive number of seconds (at most a day) from a variable; anything else is an error naming it.</summary>
    static TimeSpan? Seconds(Func<string, string?> env, string name)
    {
        string? text = NonEmpty(env(name));
        if (text is null) return null;
        return double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 && s <= 86_400
            ? TimeSpan.FromSeconds(s)
            : throw new ArgumentException($"{name}='{Util.ControlCharacters.Quote(text, 40)}' is not a number of seconds between 0 and 86400.");
    }

    /// <summary><see cref="Endpoint"/> fit to show: a password (or any user info) in it is replaced by ***.</summary>
    public string DisplayEndpoint => Redact(Endpoint);

    /// <summary>
    /// <paramref name="text"/> with the secrets these options hold removed: the user info of <see cref="Endpoint"/>
    /// (<c>https://user:password@host</c>) and the <see cref="Token"/>. Every message that may quote an address goes through it.
    /// </summary>
    public string Redact(string text)
    {
        if (string.IsNullOrEmpty(text)) return text;
        if (Uri.TryCreate(Endpoint, UriKind.Absolute, out var uri) && uri.UserInfo.Length > 0)
        {
            text = text.Replace(uri.UserInfo + "@", "***@", StringComparison.Ordinal);
            string decoded = Uri.UnescapeDataString(uri.UserInfo);
            if (decoded.Length > 0) text = text.Replace(decoded + "@", "***@", StringComparison.Ordinal);
            // The password (or a token given as the whole user info) also wherever it is quoted on its own.
            foreach (var info in new[] { uri.UserInfo, decoded })
            {
                string secret = info.Contains(':') ? info[(info.IndexOf(':') + 1)..] : info;
                if (secret.Length > 0) text = text.Replace(secret, "***", StringComparison.Ordinal);
            }
        }
        if (!string.IsNullOrEmpty(Token)) text = text.Replace(Token, "***", StringComparison.Ordinal);
        return text;
    }

    /// <summary>
    /// <c>$HF_HUB_CACHE</c>, else <c>$HUGGINGFACE_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else
    /// <c>$XDG_CACHE_HOME/huggingface/hub</c>, else <c>~/.cache/huggingface/hub</c> (the Python tools' order).
    /// </summary>
    public static string DefaultCacheDir(Func<string, string?> env)
    {
        string? hubCache = NonEmpty(env("HF_HUB_CACHE")) ?? NonEmpty(env("HUGGINGFACE_HUB_CACHE"));
        if (hubCache != null) return ExpandHome(hubCache);
        string? home = NonEmpty(env("HF_HOME"));
        if (home != null) return Path.Combine(ExpandHome(home), "hub");
        string? xdg = NonEmpty(env("XDG_CACHE_HOME"));
        string cacheRoot = xdg != null ? ExpandHome(xdg) : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cacheRoot, "huggingface", "hub");
    }

    static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    static bool IsTrue(string? s) => s != null && s.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on";

    static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "")
            : path;
}

/// <summary>Receives download progress. Calls for one file come from one thread, in order.</summary>
public interface IDownloadProgress
{
    /// <summary>A file starts downloading: <paramref name="totalBytes"/> in all, <paramref name="resumedFrom"/> already on disk.</summary>
    void Started(string repoId, string file, long totalBytes, long resumedFrom);
    /// <summary><paramref name="bytes"/> more bytes of the current file arrived.</summary>
    void Advanced(long bytes);
    /// <summary>The current file ended: verified and in the cache, or failed (<paramref name="error"/>).</summary>
    void Finished(bool success, string? error = null);
    /// <summary>A one-line note (reusing a cached file, waiting for another process, retrying).</summary>
    void Note(string message);
}
