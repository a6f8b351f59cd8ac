using System.Security.Cryptography;
using Workbook.Hub;
using Workbook.Tests.Support;

namespace Workbook.Tests.Reliability;

/// <summary>
/// <c>workbook models pull</c> in child processes against the loopback hub: a pull killed with SIGKILL in the middle
/// of a file and then restarted, and two pulls of the same model running at once, leave a correct cache: every blob
/// matches the hub's checksum, every snapshot entry links to a complete blob, refs/main names the commit, and no
/// partial or temporary file is visible as complete.
/// </summary>
public sealed class DownloadProcessTests : IDisposable
{
    const string RepoName = "test-org/tiny-gpt2";
    readonly FakeHub _hub = new();
    readonly string _cache = Directory.CreateTempSubdirectory("wb-pull-proc-").FullName;

    public void Dispose()
    {
        _hub.Dispose();
        Directory.Delete(_cache, recursive: true);
    }

    Dictionary<string, string> Environment => new()
    {
        ["HF_ENDPOINT"] = _hub.Endpoint,
        ["HF_HUB_CACHE"] = _cache,
        ["HF_TOKEN"] = "",
        ["HF_HUB_OFFLINE"] = "0",
    };

    string RepoDir => Path.Combine(_cache, "models--test-org--tiny-gpt2");

    static byte[] Fixture => File.ReadAllBytes(TestFiles.Fixture("tiny-gpt2/model.safetensors"));
    static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    /// <summary>The whole cache of the repository is what a complete pull of <paramref name="repo"/> leaves.</summary>
    void AssertCacheComplete(FakeRepo repo)
    {
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(RepoDir, "refs", "main")).Trim());
        string snapshot = Path.Combine(RepoDir, "snapshots", repo.Commit);
        var blobs = Directory.GetFiles(Path.Combine(RepoDir, "blobs"));
        Assert.DoesNotContain(blobs, b => b.EndsWith(".incomplete", StringComparison.Ordinal) || Path.GetFileName(b).StartsWith('.'));
        Assert.Empty(Directory.GetFiles(_cache, "*.tmp", SearchOption.AllDirectories));
        foreach (var blob in blobs)
        {
            // Each blob is named by its checksum: sha256 for LFS files, the git blob sha1 for the others.
            string name = Path.GetFileName(blob);
            string actual = name.Length == 64 ? Sha256(File.ReadAllBytes(blob)) : ModelHub.GitBlobSha1(blob);
            Assert.True(actual == name, $"blob {name} holds content with checksum {actual}");
        }
        foreach (var file in new[] { "config.json", "model.safetensors" })
        {
            string entry = Path.Combine(snapshot, file);
            var info = new FileInfo(entry);
            Assert.NotNull(info.LinkTarget); // a relative link into blobs/
            string target = Path.GetFullPath(Path.Combine(snapshot, info.LinkTarget!));
            Assert.Equal(Path.Combine(RepoDir, "blobs"), Path.GetDirectoryName(target));
            Assert.Equal(repo[file].Content, File.ReadAllBytes(entry));
            Assert.Equal(repo[file].Lfs ? repo[file].Sha256 : repo[file].GitSha1, Path.GetFileName(target));
        }
    }

    [Fact]
    public void PullKilledMidFileThenRestartedLeavesACorrectCache()
    {
        var repo = _hub.AddFolder(RepoName, TestFiles.Fixture("tiny-gpt2"));
        var weights = repo["model.safetensors"];
        long pauseAt = weights.Content.Length / 2;
        weights.PauseAt = pauseAt;
        string incomplete = Path.Combine(RepoDir, "blobs", weights.Sha256 + ".incomplete");

        using (var first = CliProcess.Start(Environment, "models", "pull", RepoName))
        {
            Assert.True(weights.WaitUntilPaused(TimeSpan.FromSeconds(60)), "the first pull never reached the middle of the file");
            var deadline = DateTime.UtcNow.AddSeconds(20); // let the client write what it received
            while ((!File.Exists(incomplete) || new FileInfo(incomplete).Length < pauseAt) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            first.Kill(); // SIGKILL: no cleanup code runs
            first.WaitForExit();
        }

        // Killed mid-file: nothing about the weights is visible as complete, the model is not complete.
        Assert.False(File.Exists(Path.Combine(RepoDir, "refs", "main")), "refs/main must not be written by a killed pull");
        Assert.False(File.Exists(Path.Combine(RepoDir, "blobs", weights.Sha256)), "the weights blob must not exist");
        Assert.False(File.Exists(Path.Combine(RepoDir, "snapshots", repo.Commit, "model.safetensors")));
        Assert.True(File.Exists(incomplete) && new FileInfo(incomplete).Length <= pauseAt);
        long kept = new FileInfo(incomplete).Length;
        var list = CliProcess.Run(Environment, TimeSpan.FromMinutes(2), "models", "list", "--json");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("\"status\":\"incomplete", list.Out); // `models list` does not take it for a complete model
        Assert.Contains($"\"incompleteBytes\":{kept}", list.Out);

        weights.PauseAt = null;
        weights.ReleasePause();
        var second = CliProcess.Run(Environment, TimeSpan.FromMinutes(2), "models", "pull", RepoName);
        Assert.True(second.ExitCode == 0, second.Err);
        AssertCacheComplete(repo);
        // The second pull resumed from the bytes the first one had written.
        Assert.Equal($"bytes={kept}-", _hub.ContentRequests("model.safetensors").Last().Range);
        Assert.Equal(Fixture, File.ReadAllBytes(Path.Combine(RepoDir, "snapshots", repo.Commit, "model.safetensors")));
    }

    [Fact]
    public async Task TwoPullsAtOnceInTwoProcessesLeaveACorrectCache()
    {
        var repo = _hub.AddFolder(RepoName, TestFiles.Fixture("tiny-gpt2"));
        repo["model.safetensors"].ChunkDelay = TimeSpan.FromMilliseconds(40); // ~2 s per download: the two overlap
        using var a = CliProcess.Start(Environment, "models", "pull", RepoName);
        using var b = CliProcess.Start(Environment, "models", "pull", RepoName);
        var outputs = new[] { a, b }.Select(p => (Out: p.StandardOutput.ReadToEndAsync(), Err: p.StandardError.ReadToEndAsync())).ToArray();
        Assert.True(a.WaitForExit(TimeSpan.FromMinutes(3)) && b.WaitForExit(TimeSpan.FromMinutes(3)), "a pull did not finish");
        Assert.True(a.ExitCode == 0, await outputs[0].Err);
        Assert.True(b.ExitCode == 0, await outputs[1].Err);
        AssertCacheComplete(repo);
        // The per-blob lock made one process wait for the other: the weights crossed the network once.
        Assert.Single(_hub.ContentRequests("model.safetensors"));
    }
}
