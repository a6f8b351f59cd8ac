using System.Diagnostics;
using System.Security.Cryptography;
using Workbook.Hub;
using Workbook.Tests.Cli;
using Workbook.Tests.Support;
using Workbook.Util;

namespace Workbook.Tests.Hub;

/// <summary>
/// The hub client and cache against an adversary (issue 16, items 6-12): ETags that are not checksums, links planted
/// in the cache, hostile cache contents (link loops, refs pointing at /dev/zero, FIFOs), endless answers, malformed
/// answers, secrets in HF_ENDPOINT and a server that trickles bytes. Each case reproduces the attack and checks that
/// it fails safely with a message, quickly, and without touching anything outside the cache.
/// </summary>
public sealed class HostileHubTests : IDisposable
{
    readonly FakeHub _hub = new();
    readonly string _root = Directory.CreateTempSubdirectory("wb-hostile-hub-").FullName;
    readonly RecordingNotes _notes = new();
    string Cache => Path.Combine(_root, "cache");
    string Outside => Path.Combine(_root, "outside");

    public HostileHubTests()
    {
        Directory.CreateDirectory(Cache);
        Directory.CreateDirectory(Outside);
    }

    public void Dispose()
    {
        _hub.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    HubOptions Options(bool offline = false, int maxAttempts = 1, string? endpoint = null) => new()
    {
        Endpoint = endpoint ?? _hub.Endpoint,
        CacheDir = Cache,
        MaxAttempts = maxAttempts,
        RetryDelay = TimeSpan.Zero,
        ReadTimeout = TimeSpan.FromSeconds(20),
        LockTimeout = TimeSpan.FromSeconds(20),
        Offline = offline,
        Progress = _notes,
    };

    Dictionary<string, string> Environment(string? endpoint = null) => new()
    {
        ["HF_ENDPOINT"] = endpoint ?? _hub.Endpoint,
        ["HF_HUB_CACHE"] = Cache,
        ["HF_TOKEN"] = "",
        ["HF_HUB_OFFLINE"] = "0",
    };

    static HubModel Model(string spec) => HubModels.TryResolve(spec)!;
    string RepoDir(string repo) => Path.Combine(Cache, "models--" + repo.Replace("/", "--"));

    /// <summary>Runs <paramref name="action"/> and fails (rather than hanging the suite) when it takes longer than <paramref name="limit"/>.</summary>
    static T Within<T>(TimeSpan limit, Func<T> action)
    {
        var task = Task.Run(action);
        Assert.True(Task.WhenAny(task, Task.Delay(limit)).GetAwaiter().GetResult() == task, $"did not finish within {limit.TotalSeconds:0} s (a hang)");
        return task.GetAwaiter().GetResult();
    }

    FakeRepo Tiny(string id = "test-org/tiny-gpt2") => _hub.AddFolder(id, TestFiles.Fixture("tiny-gpt2"));

    // ---------------------------------------------------------------- item 6: ETags that are not checksums

    [Fact]
    public void EtagsThatAreNotChecksumsNeverShareABlobAndWriteNoRef()
    {
        var repo = Tiny();
        repo["config.json"].ReportedEtag = "abc";          // short: the same "ETag" for two different files
        repo["model.safetensors"].ReportedEtag = "abc";
        using var hub = new ModelHub(Options());
        var pulled = hub.Pull(Model("test-org/tiny-gpt2"));

        foreach (var file in new[] { "config.json", "model.safetensors" })
            Assert.Equal(repo[file].Content, File.ReadAllBytes(Path.Combine(pulled.Folder, file)));
        var blobs = Directory.GetFiles(Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs")).Select(Path.GetFileName).ToList();
        Assert.Equal(2, blobs.Count);
        Assert.All(blobs, b => Assert.StartsWith("unverified-sha256-", b));
        Assert.Contains("unverified-sha256-" + repo["model.safetensors"].Sha256, blobs);
        Assert.False(File.Exists(Path.Combine(RepoDir("test-org/tiny-gpt2"), "refs", "main")), "no ref for bytes that were never verified");
        Assert.Equal(2, pulled.Statistics.FilesUnverified);
        Assert.Contains(_notes.Notes, n => n.Contains("not a checksum"));
    }

    [Fact]
    public void AWeakEtagCountsOnlyWhenTheBytesMatchIt()
    {
        var repo = Tiny();
        repo["model.safetensors"].WeakEtag = true;   // W/"<the real sha256>": the bytes match, so it is verified
        repo["config.json"].WeakEtag = true;
        repo["config.json"].ReportedEtag = "0123456789abcdef0123456789abcdef01234567"; // weak and wrong: unverified, not an error
        using var hub = new ModelHub(Options());
        var pulled = hub.Pull(Model("test-org/tiny-gpt2"));
        Assert.Equal(1, pulled.Statistics.FilesUnverified);
        Assert.True(File.Exists(Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs", repo["model.safetensors"].Sha256)));
        Assert.False(File.Exists(Path.Combine(RepoDir("test-org/tiny-gpt2"), "refs", "main")));
    }

    // ---------------------------------------------------------------- item 7: links where files are written

    [Fact]
    public void AtomicWritesNeverFollowAPlantedLink()
    {
        string victim = Path.Combine(Outside, "victim.txt");
        File.WriteAllText(victim, "precious");
        string target = Path.Combine(_root, "report.json");
        // The old temporary name, <target>.<pid>.tmp, was predictable: a link planted there received the write.
        File.CreateSymbolicLink($"{target}.{System.Environment.ProcessId}.tmp", victim);
        AtomicFile.WriteAllText(target, "new contents");
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Equal("new contents", File.ReadAllText(target));
        // A link at the target itself is replaced by the file, not written through.
        string linked = Path.Combine(_root, "linked.json");
        File.CreateSymbolicLink(linked, victim);
        AtomicFile.WriteAllText(linked, "replaced");
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Equal(EntryKind.RegularFile, FileSystemEntries.KindOf(linked));
        // Temporary names are unpredictable.
        Assert.NotEqual(AtomicFile.TempName(target), AtomicFile.TempName(target));
    }

    [Fact]
    public void APlantedIncompleteLinkIsNotAppendedTo()
    {
        var repo = Tiny();
        var weights = repo["model.safetensors"];
        string victim = Path.Combine(Outside, "victim.bin");
        File.WriteAllBytes(victim, new byte[] { 1, 2, 3 });
        string blobs = Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs");
        Directory.CreateDirectory(blobs);
        File.CreateSymbolicLink(Path.Combine(blobs, weights.Sha256 + ".incomplete"), victim);
        using var hub = new ModelHub(Options());
        var pulled = hub.Pull(Model("test-org/tiny-gpt2"));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(victim));
        Assert.Equal(weights.Content, File.ReadAllBytes(Path.Combine(pulled.Folder, "model.safetensors")));
    }

    [Fact]
    public void APlantedLockLinkIsNotOpenedAtItsTarget()
    {
        var repo = Tiny();
        string locks = Path.Combine(Cache, ".locks", "models--test-org--tiny-gpt2");
        Directory.CreateDirectory(locks);
        string victim = Path.Combine(Outside, "created-by-lock");
        File.CreateSymbolicLink(Path.Combine(locks, repo["model.safetensors"].Sha256 + ".lock"), victim);
        using var hub = new ModelHub(Options());
        hub.Pull(Model("test-org/tiny-gpt2"));
        Assert.False(File.Exists(victim), "the lock file was created through the planted link");
    }

    [Fact]
    public void ASnapshotFolderLinkedOutsideTheCacheIsNeitherReusedNorWrittenInto()
    {
        var repo = Tiny();
        // A complete-looking snapshot elsewhere, reached through a link planted in the cache, with refs/main naming it.
        string elsewhere = Path.Combine(Outside, "snapshot");
        Directory.CreateDirectory(elsewhere);
        File.Copy(TestFiles.Fixture("tiny-gpt2/config.json"), Path.Combine(elsewhere, "config.json"));
        File.Copy(TestFiles.Fixture("tiny-gpt2/model.safetensors"), Path.Combine(elsewhere, "model.safetensors"));
        string dir = RepoDir("test-org/tiny-gpt2");
        Directory.CreateDirectory(Path.Combine(dir, "snapshots"));
        Directory.CreateDirectory(Path.Combine(dir, "refs"));
        File.CreateSymbolicLink(Path.Combine(dir, "snapshots", repo.Commit), elsewhere);
        File.WriteAllText(Path.Combine(dir, "refs", "main"), repo.Commit);

        using (var offline = new ModelHub(Options(offline: true)))
        {
            var e = Assert.Throws<OfflineFileMissingException>(() => offline.Ensure(Model("test-org/tiny-gpt2")));
            Assert.Contains("not a folder of the cache", e.Message);
        }
        var before = Directory.GetFiles(elsewhere).Select(f => (f, File.GetLastWriteTimeUtc(f))).ToList();
        using var online = new ModelHub(Options());
        var pull = Assert.Throws<HubException>(() => online.Ensure(Model("test-org/tiny-gpt2")));
        Assert.Contains("outside the hub cache", pull.Message);
        Assert.Equal(before, Directory.GetFiles(elsewhere).Select(f => (f, File.GetLastWriteTimeUtc(f))).ToList());
    }

    // ---------------------------------------------------------------- item 8: hostile cache contents

    /// <summary>A cached model as the Python tools leave it, to be damaged by each test.</summary>
    FakeRepo PulledTiny()
    {
        var repo = Tiny();
        using var hub = new ModelHub(Options());
        hub.Pull(Model("test-org/tiny-gpt2"));
        return repo;
    }

    [Fact]
    public void LinkLoopsInTheCacheDoNotHangListingOrLoading()
    {
        var repo = PulledTiny();
        string snapshot = Path.Combine(RepoDir("test-org/tiny-gpt2"), "snapshots", repo.Commit);
        Directory.CreateDirectory(Path.Combine(snapshot, "sub"));
        File.CreateSymbolicLink(Path.Combine(snapshot, "sub", "loop"), "..");          // a folder loop
        File.CreateSymbolicLink(Path.Combine(snapshot, "self.json"), "self.json");      // a link to itself
        File.CreateSymbolicLink(Path.Combine(RepoDir("test-org/tiny-gpt2"), "refs", "up"), "..");
        var listed = Within(TimeSpan.FromSeconds(30), () => new HubCache(Cache).List());
        Assert.Single(listed);
        using var hub = new ModelHub(Options(offline: true));
        var model = Within(TimeSpan.FromSeconds(30), () => hub.Ensure(Model("test-org/tiny-gpt2")));
        Assert.Equal(snapshot, model.Folder);
        var cli = Within(TimeSpan.FromSeconds(60), () => CliProcess.Run(Environment(), TimeSpan.FromSeconds(60), "models", "list"));
        Assert.Equal(0, cli.ExitCode);
        Assert.Contains("test-org/tiny-gpt2", cli.Out);
    }

    [Fact]
    public void ARefPointingAtDevZeroIsIgnoredUnderAMemoryCap()
    {
        PulledTiny();
        string refMain = Path.Combine(RepoDir("test-org/tiny-gpt2"), "refs", "main");
        File.Delete(refMain);
        File.CreateSymbolicLink(refMain, "/dev/zero");
        var r = CliProcess.RunMeasured(Environment(), TimeSpan.FromSeconds(90), 512L << 20, "models", "list");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("test-org/tiny-gpt2", r.Out);
        Assert.True(r.PeakRssBytes < 1L << 30, $"peak {r.PeakRssBytes >> 20} MiB");
        using var hub = new ModelHub(Options(offline: true));
        Assert.Throws<OfflineFileMissingException>(() => Within(TimeSpan.FromSeconds(30), () => hub.Ensure(Model("test-org/tiny-gpt2"))));
    }

    [Fact]
    public void AFifoNamedConfigJsonIsRefusedNotWaitedOn()
    {
        var repo = PulledTiny();
        string config = Path.Combine(RepoDir("test-org/tiny-gpt2"), "snapshots", repo.Commit, "config.json");
        File.Delete(config);
        Process.Start("mkfifo", config)!.WaitForExit();
        Assert.Equal(EntryKind.Other, FileSystemEntries.KindOf(config));
        var env = Environment();
        env["HF_HUB_OFFLINE"] = "1";
        var r = CliProcess.Run(env, TimeSpan.FromSeconds(60), "run", "--model", "test-org/tiny-gpt2", "--tokens", "1,2,3");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("config.json", r.Err);
        var list = CliProcess.Run(Environment(), TimeSpan.FromSeconds(60), "models", "list");
        Assert.Contains("incomplete", list.Out);
    }

    // ---------------------------------------------------------------- item 9: whole-body reads

    [Fact]
    public void AnEndlessApiAnswerIsCutUnderAMemoryCap()
    {
        Tiny().EndlessApiAnswer = true;
        var r = CliProcess.RunMeasured(Environment(), TimeSpan.FromSeconds(120), 512L << 20, "models", "pull", "test-org/tiny-gpt2", "--quiet");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("more than the 16,777,216 a model listing can need", r.Err);
        Assert.True(r.PeakRssBytes < 1L << 30, $"peak {r.PeakRssBytes >> 20} MiB");
    }

    // ---------------------------------------------------------------- item 10: answers that make no sense

    [Theory]
    [InlineData("[1, 2, 3]", "is a JSON array, not the object the model API returns")]
    [InlineData("{\"sha\": \"0123456789abcdef0123456789abcdef01234567\", \"siblings\": [{\"rfilename\": \"config.json\", \"size\": 1e30}]}", "size 1e30, which is not a byte count")]
    [InlineData("{\"sha\": \"0123456789abcdef0123456789abcdef01234567\", \"siblings\": {}}", "'siblings' is a JSON object")]
    public void MalformedApiAnswersGetSpecificMessages(string answer, string message)
    {
        Tiny().ApiAnswer = answer;
        using var hub = new ModelHub(Options());
        var e = Assert.Throws<HubException>(() => hub.Pull(Model("test-org/tiny-gpt2")));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void AnAbsurdSizeHeaderIsNamed()
    {
        Tiny()["model.safetensors"].ReportedSizeText = "1e30";
        using var hub = new ModelHub(Options());
        var e = Assert.Throws<HubException>(() => hub.Pull(Model("test-org/tiny-gpt2")));
        Assert.Contains("states the size '1e30' for 'model.safetensors', which is not a byte count", e.Message);
    }

    [Fact]
    public void ARedirectToAFileAddressIsRefused()
    {
        Tiny()["model.safetensors"].RedirectTo = "file:///etc/passwd";
        using var hub = new ModelHub(Options());
        var e = Assert.Throws<HubException>(() => hub.Pull(Model("test-org/tiny-gpt2")));
        Assert.Contains("redirects to 'file:///etc/passwd', which is not an http(s) address", e.Message);
    }

    [Theory]
    [InlineData("gpt2\0evil")]
    [InlineData("test-org/tiny\u001b[2Jgpt2")]
    public void ControlCharactersInAModelNameAreNamed(string name)
    {
        var result = CliRunner.Run("models", "pull", name);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("control character", result.Err);
        Assert.DoesNotContain('\0', result.Err);
        Assert.DoesNotContain('\u001b', result.Err);
        Assert.Contains("control character", Assert.Throws<ArgumentException>(() => ModelHub.Resolve(name)).Message); // the library refuses it too
    }

    // ---------------------------------------------------------------- item 11: secrets

    [Fact]
    public void APasswordInHfEndpointNeverReachesAMessage()
    {
        string endpoint = _hub.Endpoint.Replace("http://", "http://alice:s3cr3t-pw@");
        var result = CliProcess.Run(Environment(endpoint), TimeSpan.FromSeconds(60), "models", "pull", "test-org/no-such-model");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("***@", result.Err);
        Assert.DoesNotContain("s3cr3t-pw", result.Err + result.Out);
        using var hub = new ModelHub(Options(endpoint: endpoint));
        var e = Assert.Throws<HubException>(() => hub.Pull(Model("test-org/no-such-model")));
        Assert.DoesNotContain("s3cr3t-pw", e.Message);
        Assert.Equal("http://***@127.0.0.1", new HubOptions { Endpoint = "http://alice:s3cr3t-pw@127.0.0.1" }.DisplayEndpoint);
    }

    // ---------------------------------------------------------------- item 12: stalled downloads

    [Fact]
    public void ATricklingServerTimesOutAndThePartialFileIsKept()
    {
        var weights = Tiny()["model.safetensors"];
        weights.TrickleDelay = TimeSpan.FromMilliseconds(200); // 5 bytes a second: never silent for long, never done
        var options = Options(maxAttempts: 2) with { StallTimeout = TimeSpan.FromSeconds(2), StallBytes = 4096 };
        using var hub = new ModelHub(options);
        var clock = Stopwatch.StartNew();
        var e = Within(TimeSpan.FromSeconds(60), () => Assert.ThrowsAny<TransientHubException>(() => hub.Pull(Model("test-org/tiny-gpt2"))));
        Assert.Contains("stalled", e.Message);
        Assert.Contains("kept in", e.Message);
        string incomplete = Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs", weights.Sha256 + ".incomplete");
        Assert.True(new FileInfo(incomplete).Length > 0, "the bytes received are kept for a resume");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void TheStallTimeoutIsConfigurable()
    {
        Assert.Equal(TimeSpan.FromSeconds(7.5), HubOptions.FromEnvironment(v => v == "WORKBOOK_HUB_STALL_TIMEOUT" ? "7.5" : null).StallTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), HubOptions.FromEnvironment(_ => null).StallTimeout);
        var e = Assert.Throws<ArgumentException>(() => HubOptions.FromEnvironment(v => v == "WORKBOOK_HUB_STALL_TIMEOUT" ? "soon" : null));
        Assert.Contains("WORKBOOK_HUB_STALL_TIMEOUT", e.Message);
    }

    sealed class RecordingNotes : IDownloadProgress
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Notes { get; } = new();
        public void Started(string repoId, string file, long totalBytes, long resumedFrom) { }
        public void Advanced(long bytes) { }
        public void Finished(bool success, string? error = null) { }
        public void Note(string message) => Notes.Enqueue(message);
    }
}
