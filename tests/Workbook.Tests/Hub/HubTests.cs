using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Workbook.Checkpoints;
using Workbook.Hub;
using Workbook.Model;
using Workbook.Tests.Support;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Tests.Hub;

/// <summary>Pulling models from a loopback stand-in for the hub into a temporary hub cache.</summary>
public class HubTests : IDisposable
{
    readonly FakeHub _hub = new();
    readonly string _cache = Directory.CreateTempSubdirectory("wb-hub-").FullName;
    readonly RecordingProgress _progress = new();

    public void Dispose()
    {
        _hub.Dispose();
        Directory.Delete(_cache, recursive: true);
    }

    HubOptions Options(int maxAttempts = 1, bool offline = false, string? token = null) => new()
    {
        Endpoint = _hub.Endpoint,
        CacheDir = _cache,
        MaxAttempts = maxAttempts,
        RetryDelay = TimeSpan.Zero,
        ReadTimeout = TimeSpan.FromSeconds(20),
        LockTimeout = TimeSpan.FromSeconds(30),
        Offline = offline,
        Token = token,
        Progress = _progress,
    };

    static HubModel Model(string spec) => HubModels.TryResolve(spec)!;

    string RepoDir(string repo) => Path.Combine(_cache, "models--" + repo.Replace("/", "--"));

    static void AssertLogitsMatchFixture(HookedTransformer model, double tolerance = 1e-4)
    {
        var fixture = ScenarioFixture.Load("tiny-gpt2-scenarios.json");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        TensorAssert.Close(fixture["unpatched"].Logits, model.Forward(TensorAssert.Tokens(fixture.Clean)), tolerance, "pulled tiny-gpt2");
    }

    static long FixtureSize => new FileInfo(TestFiles.Fixture("tiny-gpt2/model.safetensors")).Length;
    static string FixtureSha256 => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(TestFiles.Fixture("tiny-gpt2/model.safetensors"))));

    /// <summary>Nothing about a file is in the cache but (perhaps) a partial download.</summary>
    void AssertNothingComplete(string repoId, FakeRepo repo, string file)
    {
        string dir = RepoDir(repoId);
        Assert.False(File.Exists(Path.Combine(dir, "refs", "main")), "refs/main must not be written for an incomplete model");
        Assert.False(File.Exists(Path.Combine(dir, "snapshots", repo.Commit, file)), $"{file} must not appear in the snapshot");
        var f = repo[file];
        Assert.False(File.Exists(Path.Combine(dir, "blobs", f.Sha256)));
        Assert.False(File.Exists(Path.Combine(dir, "blobs", f.GitSha1)));
    }

    [Fact]
    public void FullPullUsesTheHubCacheLayoutAndLoads()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        using var hub = new ModelHub(Options(token: "hf_secret"));
        var pulled = hub.Pull(Model("test-org/tiny-gpt2"));

        string dir = RepoDir("test-org/tiny-gpt2");
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(dir, "refs", "main")));
        Assert.Equal(Path.Combine(dir, "snapshots", repo.Commit), pulled.Folder);
        // LFS file: blob named by its sha256 (computed here from the fixture), reached through a relative symlink.
        var weights = new FileInfo(Path.Combine(pulled.Folder, "model.safetensors"));
        Assert.Equal($"../../blobs/{FixtureSha256}", weights.LinkTarget);
        Assert.Equal(File.ReadAllBytes(TestFiles.Fixture("tiny-gpt2/model.safetensors")), File.ReadAllBytes(weights.FullName));
        // Regular file: blob named by its git object id; checked against git itself when it is installed.
        var config = new FileInfo(Path.Combine(pulled.Folder, "config.json"));
        Assert.Equal($"../../blobs/{repo["config.json"].GitSha1}", config.LinkTarget);
        if (GitHashObject(TestFiles.Fixture("tiny-gpt2/config.json")) is { } gitId) Assert.Equal(gitId, repo["config.json"].GitSha1);
        Assert.False(File.Exists(Path.Combine(pulled.Folder, "generation_config.json")), "only the files a model needs are pulled");
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "blobs"), "*.incomplete"));
        Assert.Equal(new PullStatistics(2, FixtureSize + repo["config.json"].Content.Length, 0), pulled.Statistics);

        // Progress reported every byte of the weights.
        var started = _progress.Events.OfType<RecordingProgress.Start>().Single(s => s.File == "model.safetensors");
        Assert.Equal(FixtureSize, started.Total);
        Assert.Equal(FixtureSize + repo["config.json"].Content.Length, _progress.Bytes);

        // The token goes to the hub, never to the CDN that serves LFS files.
        Assert.All(_hub.Requests.Where(r => !r.IsCdn), r => Assert.Equal("Bearer hf_secret", r.Authorization));
        Assert.All(_hub.Requests.Where(r => r.IsCdn), r => Assert.Null(r.Authorization));
        Assert.Contains(_hub.Requests, r => r.IsCdn);

        using var model = ModelLoader.Load("test-org/tiny-gpt2", new LoadOptions { Hub = Options() });
        AssertLogitsMatchFixture(model);

        // Pulling again checks the hub but downloads nothing.
        int before = _hub.ContentRequests("model.safetensors").Count;
        var again = hub.Pull(Model("test-org/tiny-gpt2"));
        Assert.Equal(0, again.Statistics.FilesDownloaded);
        Assert.Equal(before, _hub.ContentRequests("model.safetensors").Count);
    }

    static string? GitHashObject(string path)
    {
        try
        {
            var p = Process.Start(new ProcessStartInfo("git", $"hash-object \"{path}\"") { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string output = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // git not installed
        }
    }

    [Fact]
    public void AliasDownloadsOnFirstUseThenWorksOffline()
    {
        _hub.AddFolder("gpt2", TestFiles.Fixture("tiny-gpt2")); // the alias's repository, with tiny stand-in weights
        using (var model = ModelLoader.Load("gpt2", new LoadOptions { Hub = Options() }))
            AssertLogitsMatchFixture(model);
        Assert.True(Directory.Exists(RepoDir("gpt2")));

        int requests = _hub.Requests.Count;
        using (var model = ModelLoader.Load("gpt2", new LoadOptions { Hub = Options(offline: true) }))
            AssertLogitsMatchFixture(model);
        // Online again: a complete cached model is used without asking the hub.
        using (var model = ModelLoader.Load("gpt2", new LoadOptions { Hub = Options() }))
            AssertLogitsMatchFixture(model);
        Assert.Equal(requests, _hub.Requests.Count);
    }

    /// <summary>A cache laid out by HuggingFace's Python tools (here under the renamed repository's id) is found and reused.</summary>
    [Fact]
    public void CacheWrittenByPythonToolsIsReused()
    {
        string commit = new string('a', 40);
        string repo = RepoDir("openai-community/gpt2");
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(Path.Combine(repo, "snapshots", commit));
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), commit);
        foreach (var (file, blob) in new[] { ("config.json", "0123456789abcdef0123456789abcdef01234567"), ("model.safetensors", FixtureSha256) })
        {
            File.Copy(TestFiles.Fixture("tiny-gpt2/" + file), Path.Combine(repo, "blobs", blob));
            File.CreateSymbolicLink(Path.Combine(repo, "snapshots", commit, file), $"../../blobs/{blob}");
        }
        using var model = ModelLoader.Load("gpt2", new LoadOptions { Hub = Options(offline: true) });
        AssertLogitsMatchFixture(model);
        var listed = new HubCache(_cache).List().Single();
        Assert.Equal("openai-community/gpt2", listed.Id.Value);
        Assert.Equal(FixtureSize + new FileInfo(TestFiles.Fixture("tiny-gpt2/config.json")).Length, listed.SizeOnDisk);
    }

    [Fact]
    public void InterruptedDownloadResumesWithARangeRequest()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        long dropAt = FixtureSize / 2;
        repo["model.safetensors"].DropAt = dropAt;
        repo["model.safetensors"].DropTimes = 1;

        using (var hub = new ModelHub(Options(maxAttempts: 1)))
        {
            var e = Assert.ThrowsAny<HubException>(() => hub.Pull(Model("test-org/tiny-gpt2")));
            Assert.Contains("model.safetensors", e.Message);
        }
        AssertNothingComplete("test-org/tiny-gpt2", repo, "model.safetensors");
        string incomplete = Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs", FixtureSha256 + ".incomplete");
        long have = new FileInfo(incomplete).Length;
        Assert.InRange(have, 1, dropAt);
        var offline = Assert.Throws<OfflineFileMissingException>(() => ModelLoader.Load("test-org/tiny-gpt2", new LoadOptions { Hub = Options(offline: true) }));
        Assert.Contains("refs/main", offline.Message);

        using (var hub = new ModelHub(Options(maxAttempts: 1)))
        {
            var pulled = hub.Pull(Model("test-org/tiny-gpt2"));
            Assert.Equal(FixtureSize - have, pulled.Statistics.BytesDownloaded);
            Assert.Equal(1, pulled.Statistics.FilesReused); // config.json, linked before the interruption
        }
        Assert.Equal($"bytes={have}-", _hub.ContentRequests("model.safetensors").Last().Range);
        Assert.False(File.Exists(incomplete));
        using var model = ModelLoader.Load("test-org/tiny-gpt2", new LoadOptions { Hub = Options(offline: true) });
        AssertLogitsMatchFixture(model);
    }

    [Fact]
    public void OnePullRetriesAndResumesByItself()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        repo["model.safetensors"].DropAt = FixtureSize / 3;
        repo["model.safetensors"].DropTimes = 2;
        using var hub = new ModelHub(Options(maxAttempts: 3));
        var pulled = hub.Pull(Model("test-org/tiny-gpt2"));
        var requests = _hub.ContentRequests("model.safetensors");
        Assert.Equal(3, requests.Count);
        Assert.Null(requests[0].Range);
        Assert.StartsWith("bytes=", requests[2].Range);
        Assert.Equal(FixtureSize, pulled.Statistics.BytesDownloaded - repo["config.json"].Content.Length);
        Assert.Contains(_progress.Notes, n => n.Contains("resuming"));
        using var model = ModelLoader.LoadFolder(pulled.Folder);
        AssertLogitsMatchFixture(model);
    }

    [Fact]
    public void ServerErrorsOnMetadataAreRetried()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        repo["config.json"].ServerErrorTimes = 2;
        using (var failing = new ModelHub(Options(maxAttempts: 2)))
            Assert.Contains("503", Assert.ThrowsAny<HubException>(() => failing.Pull(Model("test-org/tiny-gpt2"))).Message);
        repo["config.json"].ServerErrorTimes = 2;
        using var hub = new ModelHub(Options(maxAttempts: 3));
        Assert.Equal(repo.Commit, hub.Pull(Model("test-org/tiny-gpt2")).Commit);
    }

    [Fact]
    public void ServerIgnoringRangeRestartsCleanly()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        var f = repo["model.safetensors"];
        f.DropAt = FixtureSize / 2;
        f.DropTimes = 1;
        f.IgnoreRange = true;
        using var hub = new ModelHub(Options(maxAttempts: 2));
        var pulled = hub.Pull(Model("test-org/tiny-gpt2"));
        Assert.Equal(File.ReadAllBytes(TestFiles.Fixture("tiny-gpt2/model.safetensors")), File.ReadAllBytes(Path.Combine(pulled.Folder, "model.safetensors")));
    }

    [Theory]
    [InlineData("model.safetensors", 100)]
    [InlineData("model.safetensors", -100)]
    [InlineData("config.json", 7)]
    [InlineData("config.json", -7)]
    public void WrongReportedSizeIsRejected(string file, long delta)
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        repo[file].ReportedSize = repo[file].Content.Length + delta;
        using var hub = new ModelHub(Options(maxAttempts: 3));
        var e = Assert.Throws<VerificationException>(() => hub.Pull(Model("test-org/tiny-gpt2")));
        Assert.Contains(file, e.Message);
        Assert.Contains("Nothing was kept", e.Message);
        AssertNothingComplete("test-org/tiny-gpt2", repo, file);
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs"), "*.incomplete"));
    }

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("config.json")]
    public void WrongChecksumIsRejected(string file)
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        var f = repo[file];
        string wrong = f.Lfs ? Convert.ToHexStringLower(SHA256.HashData(new byte[] { 1, 2, 3 })) : new string('c', 40);
        f.ReportedEtag = wrong;
        using var hub = new ModelHub(Options(maxAttempts: 3));
        var e = Assert.Throws<VerificationException>(() => hub.Pull(Model("test-org/tiny-gpt2")));
        Assert.Contains("checksum mismatch", e.Message);
        Assert.Contains(wrong, e.Message);
        string blobs = Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs");
        Assert.False(File.Exists(Path.Combine(blobs, wrong)));
        Assert.False(File.Exists(Path.Combine(blobs, wrong + ".incomplete")));
        AssertNothingComplete("test-org/tiny-gpt2", repo, file);
        Assert.Single(_hub.ContentRequests(file)); // a checksum failure is not retried
    }

    [Fact]
    public void OfflineWithoutCacheNamesWhatIsMissing()
    {
        _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        var e = Assert.Throws<OfflineFileMissingException>(() => ModelLoader.Load("test-org/tiny-gpt2", new LoadOptions { Hub = Options(offline: true) }));
        Assert.Contains("Offline mode", e.Message);
        Assert.Contains("models--test-org--tiny-gpt2", e.Message);
        Assert.Equal("config.json", e.File);
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public void ShardedCheckpointIsPulledAndAMissingShardIsNamedOffline()
    {
        // tiny-gpt2 split into two shards with an index, as large checkpoints (Pythia) are published.
        string folder = Path.Combine(_cache, "..", Path.GetFileName(_cache) + "-src");
        Directory.CreateDirectory(folder);
        try
        {
            File.Copy(TestFiles.Fixture("tiny-gpt2/config.json"), Path.Combine(folder, "config.json"));
            var weightMap = new Dictionary<string, string>();
            using (var f = SafetensorsFile.Open(TestFiles.Fixture("tiny-gpt2/model.safetensors")))
            using (NewDisposeScope())
            {
                var names = f.Tensors.Keys.OrderBy(n => n).ToList();
                for (int shard = 0; shard < 2; shard++)
                {
                    string file = $"model-0000{shard + 1}-of-00002.safetensors";
                    var part = names.Where((_, i) => i % 2 == shard).ToList();
                    SafetensorsWriter.Write(Path.Combine(folder, file), part.Select(n => (n, f.Read(n))).ToList());
                    foreach (var n in part) weightMap[n] = file;
                }
            }
            File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
                System.Text.Json.JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = weightMap }));
            var repo = _hub.AddFolder("test-org/sharded", folder);

            using (var hub = new ModelHub(Options()))
            {
                var pulled = hub.Pull(Model("test-org/sharded"));
                Assert.Equal(4, pulled.Statistics.FilesDownloaded);
                using var model = ModelLoader.LoadFolder(pulled.Folder);
                AssertLogitsMatchFixture(model);
                File.Delete(Path.Combine(pulled.Folder, "model-00002-of-00002.safetensors"));
            }
            var e = Assert.Throws<OfflineFileMissingException>(() => ModelLoader.Load("test-org/sharded", new LoadOptions { Hub = Options(offline: true) }));
            Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task ConcurrentPullsDownloadEachBlobOnce()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        repo["model.safetensors"].PauseAt = FixtureSize / 2;
        var secondProgress = new RecordingProgress();
        using var first = new ModelHub(Options());
        using var second = new ModelHub(Options() with { Progress = secondProgress });

        var firstPull = Task.Run(() => first.PullAsync(Model("test-org/tiny-gpt2")));
        Assert.True(repo["model.safetensors"].WaitUntilPaused(TimeSpan.FromSeconds(20)), "the first pull never reached the middle of the file");
        var secondPull = Task.Run(() => second.PullAsync(Model("test-org/tiny-gpt2")));
        // The second pull must wait for the lock the first one holds on the blob.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!secondProgress.Notes.Any(n => n.Contains("waiting for another download")) && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Contains(secondProgress.Notes, n => n.Contains("waiting for another download"));
        repo["model.safetensors"].ReleasePause();

        var results = await Task.WhenAll(firstPull, secondPull);
        Assert.Equal(results[0].Folder, results[1].Folder);
        Assert.Single(_hub.ContentRequests("model.safetensors"));
        Assert.Equal(0, results[1].Statistics.FilesDownloaded);
        Assert.Equal(File.ReadAllBytes(TestFiles.Fixture("tiny-gpt2/model.safetensors")), File.ReadAllBytes(Path.Combine(results[1].Folder, "model.safetensors")));
    }

    [Fact]
    public async Task PullStoppedMidFileIsResumedByTheNextOne()
    {
        var repo = _hub.AddFolder("test-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        long pauseAt = FixtureSize / 2;
        repo["model.safetensors"].PauseAt = pauseAt;
        using var cancel = new CancellationTokenSource();
        using (var hub = new ModelHub(Options()))
        {
            var pull = Task.Run(() => hub.PullAsync(Model("test-org/tiny-gpt2"), cancel.Token));
            Assert.True(repo["model.safetensors"].WaitUntilPaused(TimeSpan.FromSeconds(20)));
            string incomplete = Path.Combine(RepoDir("test-org/tiny-gpt2"), "blobs", FixtureSha256 + ".incomplete");
            var deadline = DateTime.UtcNow.AddSeconds(20); // let the client write what it received
            while ((!File.Exists(incomplete) || new FileInfo(incomplete).Length < pauseAt) && DateTime.UtcNow < deadline) await Task.Delay(20);
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pull);
        }
        AssertNothingComplete("test-org/tiny-gpt2", repo, "model.safetensors");
        repo["model.safetensors"].PauseAt = null;
        repo["model.safetensors"].ReleasePause();
        using (var hub = new ModelHub(Options()))
        {
            var pulled = await hub.PullAsync(Model("test-org/tiny-gpt2"));
            Assert.Equal($"bytes={pauseAt}-", _hub.ContentRequests("model.safetensors").Last().Range);
            Assert.Equal(FixtureSize - pauseAt, pulled.Statistics.BytesDownloaded);
        }
    }

    [Fact]
    public void RenamedRepositoryIsFollowedAndCachedUnderTheRequestedId()
    {
        var repo = _hub.AddFolder("new-org/tiny-gpt2", TestFiles.Fixture("tiny-gpt2"));
        _hub.Rename("old-org/tiny-gpt2", "new-org/tiny-gpt2");
        using var model = ModelLoader.Load("old-org/tiny-gpt2", new LoadOptions { Hub = Options() });
        AssertLogitsMatchFixture(model);
        // As the Python tools do: the cache folder is named after the id that was asked for.
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(RepoDir("old-org/tiny-gpt2"), "refs", "main")));
        Assert.Contains(_hub.Requests, r => r.Path.StartsWith("/new-org/tiny-gpt2/resolve/", StringComparison.Ordinal));
    }

    [Fact]
    public void UnknownModelsGetClearErrors()
    {
        using var hub = new ModelHub(Options());
        var e = Assert.Throws<HubException>(() => ModelLoader.Load("no-such-org/no-such-model", new LoadOptions { Hub = Options() }));
        Assert.Contains("no-such-org/no-such-model", e.Message);
        Assert.Contains("HF_TOKEN", e.Message);
        int before = _hub.Requests.Count;
        var bare = Assert.Throws<ArgumentException>(() => ModelLoader.Load("pythia-2.8b-dedup", new LoadOptions { Hub = Options() }));
        Assert.Contains("pythia-2.8b-deduped", bare.Message); // did-you-mean
        Assert.Equal(before, _hub.Requests.Count);
        var path = Assert.Throws<CheckpointException>(() => ModelLoader.Load("./no/such/folder", new LoadOptions { Hub = Options() }));
        Assert.Contains("does not exist", path.Message);
    }

    /// <summary>attn-only-4l's layout: a TransformerLens checkpoint whose tokenizer lives in another repository.</summary>
    [Fact]
    public void TransformerLensModelComesWithItsTokenizerRepository()
    {
        using var scope = NewDisposeScope();
        var model = _hub.AddRepo("NeelNanda/Attn_Only_4L512W_C4_Code");
        model.Add("config.json", """
            {"n_layers": 1, "d_model": 16, "d_mlp": 64, "d_head": 8, "n_heads": 2, "n_ctx": 8, "d_vocab": 300,
             "act_fn": "solu_ln", "attn_only": true, "normalization": "LN", "tokenizer_name": "NeelNanda/gpt-neox-tokenizer-digits"}
            """);
        var w = new TorchSaveWriter();
        manual_seed(3);
        w.Add("embed.W_E", randn(300, 16)).Add("pos_embed.W_pos", randn(8, 16)).Add("ln_final.w", ones(16)).Add("ln_final.b", zeros(16))
            .Add("unembed.W_U", randn(16, 300)).Add("unembed.b_U", zeros(300)).Add("blocks.0.ln1.w", ones(16)).Add("blocks.0.ln1.b", zeros(16));
        foreach (var m in new[] { "W_Q", "W_K", "W_V" }) w.Add($"blocks.0.attn.{m}", randn(2, 16, 8));
        foreach (var m in new[] { "b_Q", "b_K", "b_V" }) w.Add($"blocks.0.attn.{m}", randn(2, 8));
        w.Add("blocks.0.attn.W_O", randn(2, 8, 16)).Add("blocks.0.attn.b_O", randn(16));
        string pth = Path.Combine(_cache, "model_final.pth");
        w.Write(pth);
        model.Add("model_final.pth", File.ReadAllBytes(pth), lfs: true);
        File.Delete(pth);
        var tokenizer = _hub.AddRepo("NeelNanda/gpt-neox-tokenizer-digits");
        tokenizer.Add("tokenizer.json", MinimalByteLevelTokenizer());
        tokenizer.Add("tokenizer_config.json", """{"bos_token": "<|endoftext|>"}""");

        using (var loaded = ModelLoader.LoadWithTokenizer("attn-only-4l", new LoadOptions { Hub = Options() }))
        {
            Assert.True(loaded.Model.Config.AttentionOnly);
            Assert.Equal(("<|endoftext|>", 256), loaded.RequireTokenizer().Bos);
            Assert.Equal(new[] { 256, (int)'h', (int)'i' }, loaded.Tokenizer!.EncodePrompt("hi", prependBos: true));
        }
        Assert.True(File.Exists(Path.Combine(RepoDir("NeelNanda/gpt-neox-tokenizer-digits"), "refs", "main")));
        using (var offline = ModelLoader.LoadWithTokenizer("attn-only-4l", new LoadOptions { Hub = Options(offline: true) }))
            Assert.NotNull(offline.Tokenizer);
    }

    /// <summary>Bytes 0..255 as ids (ASCII letters spell themselves), no merges, &lt;|endoftext|&gt; = 256.</summary>
    internal static string MinimalByteLevelTokenizer()
    {
        var printable = Enumerable.Range(33, 94).Concat(Enumerable.Range(161, 12)).Concat(Enumerable.Range(174, 82)).ToList();
        var others = Enumerable.Range(0, 256).Except(printable).ToList();
        var vocab = Enumerable.Range(0, 256).ToDictionary(b => printable.Contains(b) ? ((char)b).ToString() : ((char)(256 + others.IndexOf(b))).ToString(), b => b);
        return System.Text.Json.JsonSerializer.Serialize(new
        {
            added_tokens = new[] { new { id = 256, content = "<|endoftext|>", special = true, normalized = false } },
            pre_tokenizer = new { type = "Sequence", pretokenizers = new object[] { new { type = "Digits", individual_digits = true }, new { type = "ByteLevel", add_prefix_space = false } } },
            decoder = new { type = "ByteLevel" },
            model = new { type = "BPE", vocab, merges = Array.Empty<string>() },
        });
    }

    [Fact]
    public void EnvironmentVariablesChooseEndpointCacheTokenAndOfflineMode()
    {
        HubOptions From(params (string, string)[] vars) => HubOptions.FromEnvironment(k => vars.FirstOrDefault(v => v.Item1 == k).Item2);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), From().CacheDir);
        Assert.Equal(Path.Combine("/x", "huggingface", "hub"), From(("XDG_CACHE_HOME", "/x")).CacheDir);
        Assert.Equal(Path.Combine("/h", "hub"), From(("HF_HOME", "/h"), ("XDG_CACHE_HOME", "/x")).CacheDir);
        Assert.Equal("/c", From(("HF_HUB_CACHE", "/c"), ("HF_HOME", "/h")).CacheDir);
        Assert.Equal("https://mirror.example/hf", From(("HF_ENDPOINT", "https://mirror.example/hf/")).Endpoint);
        Assert.Equal(HubOptions.DefaultEndpoint, From().Endpoint);
        Assert.Equal("tok", From(("HF_TOKEN", "tok")).Token);
        Assert.True(From(("HF_HUB_OFFLINE", "1")).Offline);
        Assert.True(From(("HF_HUB_OFFLINE", "true")).Offline);
        Assert.False(From(("HF_HUB_OFFLINE", "0")).Offline);
    }
}

/// <summary>Collects progress events for assertions.</summary>
public sealed class RecordingProgress : IDownloadProgress
{
    public sealed record Start(string Repo, string File, long Total, long ResumedFrom);
    public ConcurrentQueue<object> Events { get; } = new();
    public ConcurrentQueue<string> Notes { get; } = new();
    long _bytes;
    public long Bytes => Interlocked.Read(ref _bytes);

    public void Started(string repoId, string file, long totalBytes, long resumedFrom) => Events.Enqueue(new Start(repoId, file, totalBytes, resumedFrom));
    public void Advanced(long bytes) => Interlocked.Add(ref _bytes, bytes);
    public void Finished(bool success, string? error = null) => Events.Enqueue((success, error));
    public void Note(string message) => Notes.Enqueue(message);
}
