namespace Workbook.Hub;

/// <summary>
/// A model could not be obtained from the hub or the cache: network failure, unknown repository, a file that
/// failed verification, or a file missing from the cache in offline mode. The message names the repository and file.
/// </summary>
public class HubException : IOException
{
    public HubException(string message) : base(message) { }
    public HubException(string message, Exception? inner) : base(message, inner) { }
}

/// <summary>Offline mode (or no network) and the cache lacks a file the model needs.</summary>
public sealed class OfflineFileMissingException : HubException
{
    public string RepoId { get; }
    public string File { get; }

    public OfflineFileMissingException(string repoId, string file, string message) : base(message)
    {
        RepoId = repoId;
        File = file;
    }
}

/// <summary>A downloaded file did not match the size or checksum the hub reported; nothing was kept.</summary>
public sealed class VerificationException : HubException
{
    public VerificationException(string message) : base(message) { }
}
