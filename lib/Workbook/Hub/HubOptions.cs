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

    /// <summary>Receives progress of downloads (null: silent).</summary>
    public IDownloadProgress? Progress { get; init; }

    /// <summary>Options from the environment: HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE.</summary>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>Same as <see cref="FromEnvironment()"/> with a given variable lookup (for tests).</summary>
    public static HubOptions FromEnvironment(Func<string, string?> env)
    {
        string? endpoint = NonEmpty(env("HF_ENDPOINT"));
        string? token = NonEmpty(env("HF_TOKEN")) ?? NonEmpty(env("HUGGING_FACE_HUB_TOKEN"));
        return new HubOptions
        {
            Endpoint = (endpoint ?? DefaultEndpoint).TrimEnd('/'),
            Token = token,
            CacheDir = DefaultCacheDir(env),
            Offline = IsTrue(env("HF_HUB_OFFLINE")) || IsTrue(env("TRANSFORMERS_OFFLINE")) || IsTrue(env("WORKBOOK_OFFLINE")),
        };
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
