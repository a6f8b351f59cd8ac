using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Cli.Commands;
using Workbook.Hub;
using Workbook.Model;
using Workbook.Tests.Cli;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Checkpoints;

/// <summary>
/// Random-weights stand-ins (<c>workbook models random</c>): the real model's exact configuration (checked against the
/// facts of spec section E, written out here, not read from the code), seeded weights, a mark in config.json that every
/// load carries, and a hub cache that never takes one for a download nor lets one hide the real model.
/// </summary>
public class RandomStandInTests
{
    /// <summary>Spec E.1–E.3: layers, d_model, heads, d_head, d_mlp, vocabulary, context, and the architecture's switches.</summary>
    public static TheoryData<string, int, int, int, int, int, int, int> SpecFacts() => new()
    {
        { "gpt2", 12, 768, 12, 64, 3072, 50257, 1024 },
        { "attn-only-4l", 4, 512, 8, 64, 0, 48262, 1024 },
        { "pythia-2.8b-deduped", 32, 2560, 32, 80, 10240, 50304, 2048 },
    };

    [Theory]
    [MemberData(nameof(SpecFacts))]
    public void EachStandInHasItsRealModelsExactConfiguration(string like, int layers, int dModel, int heads, int dHead, int dMlp, int vocab, int ctx)
    {
        var c = RandomStandIns.ConfigOf(like);
        Assert.Equal((layers, dModel, heads, dHead, dMlp, vocab, ctx), (c.NLayers, c.DModel, c.NHeads, c.DHead, c.DMlp, c.DVocab, c.NCtx));
        switch (like)
        {
            case "gpt2": // gelu_new, tied unembedding, BOS 50256, learned positions
                Assert.Equal((ActivationFunction.GeluNew, true, 50256, PositionalEmbedding.Learned), (c.Activation, c.TiedEmbeddings, c.BosTokenId!.Value, c.Positional));
                break;
            case "attn-only-4l": // attention only, learned positions added to the residual
                Assert.True(c.AttentionOnly);
                Assert.Equal(PositionalEmbedding.Learned, c.Positional);
                break;
            default: // exact GELU, parallel blocks, rotary on 20 of 80 dims, untied unembedding, BOS 0
                Assert.Equal((ActivationFunction.Gelu, true, PositionalEmbedding.Rotary, 20, false, 0),
                    (c.Activation, c.ParallelAttnMlp, c.Positional, c.RotaryDim, c.TiedEmbeddings, c.BosTokenId!.Value));
                break;
        }
        // Pythia-2.8B's weights: 2,775,208,960 parameters (11.1 GB as float32, 5.55 GB as float16 on disk, like the hub's).
        if (like == "pythia-2.8b-deduped")
        {
            Assert.Equal(2 * 2_775_208_960L, RandomStandIns.WeightBytes(like));
            Assert.Equal(ScalarType.Float16, RandomStandIns.DefaultStorage(like));
        }
    }

    [Fact]
    public void AStandInLoadsWithTheRealConfigurationAndCarriesItsMark()
    {
        using var dir = new TempFolder();
        var files = RandomStandIns.Write("attn-only-4l", seed: 5, dir.Path, ScalarType.Float16);
        // The loader reads the TransformerLens config the real checkpoint has (spec E.2) and every tensor by its real name.
        using var loaded = ModelLoader.LoadWithTokenizer(dir.Path, new LoadOptions { Hub = new HubOptions { CacheDir = dir.Path, Offline = true } });
        var c = loaded.Model.Config;
        Assert.Equal((4, 512, 8, 64, 48262, 1024, true), (c.NLayers, c.DModel, c.NHeads, c.DHead, c.DVocab, c.NCtx, c.AttentionOnly));
        Assert.Equal(new RandomWeightsInfo("attn-only-4l", 5, "float16"), loaded.RandomWeights);
        Assert.Equal(files.Info, loaded.RandomWeights);
        Assert.Null(loaded.Tokenizer); // the tokenizer repository is not cached, and a stand-in never downloads
        Assert.Contains("token-id prompts", loaded.TokenizerNote);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")));
        Assert.Contains("NOT the real model", config.RootElement.GetProperty(RandomWeightsInfo.ConfigKey).GetProperty("note").GetString());
        // The weights are N(0, 0.02²) where they should be (embedding), LayerNorm gains 1.
        Assert.InRange(loaded.Model.embed.W_E.to(ScalarType.Float32).std().item<float>(), 0.0195, 0.0205);
        Assert.Equal(1f, loaded.Model.blocks[2].ln1!.w.to(ScalarType.Float32).mean().item<float>());
        // A report on it names it by its folder and says its weights are random (text and JSON); Docstring runs on token-id
        // prompts of the real shape, since the tokenizer is not on this machine.
        var cli = CliRunner.Run("report", "--model", dir.Path, "--task", "docstring", "--prompts", "3", "--components", "edge", "--values", "resample",
            "--positions", "all", "--sets", "complement", "--offline", "--json");
        Assert.True(cli.ExitCode == 0, cli.Err);
        using (var report = JsonDocument.Parse(cli.Out))
        {
            Assert.Equal(Path.GetFileName(dir.Path), report.RootElement.GetProperty("model").GetString());
            Assert.True(report.RootElement.GetProperty("randomWeights").GetBoolean());
        }
        Assert.Contains($"note: '{Path.GetFileName(dir.Path)}' is random weights (a stand-in with attn-only-4l's configuration, seed 5; not the real model).", cli.Err);

        // The same seed writes the same bytes; another seed other weights.
        using var again = new TempFolder();
        Assert.Equal(files.WeightsSha256, RandomStandIns.Write("attn-only-4l", 5, again.Path, ScalarType.Float16).WeightsSha256);
        Assert.NotEqual(files.WeightsSha256, RandomStandIns.Write("attn-only-4l", 6, again.Path, ScalarType.Float16).WeightsSha256);
    }

    [Fact]
    public void UnknownStandInsAndBadSeedsGetOneLineErrors()
    {
        var cli = CliRunner.Run("models", "random", "--like", "gpt-2", "--out", Path.Combine(Path.GetTempPath(), "never-written"));
        Assert.Equal(1, cli.ExitCode);
        Assert.Contains("There is no random stand-in of 'gpt-2'; stand-ins exist for gpt2, attn-only-4l, pythia-2.8b-deduped. Did you mean 'gpt2'?", cli.Err);
        cli = CliRunner.Run("models", "random", "--like", "gpt2", "--seed", "-1", "--out", Path.Combine(Path.GetTempPath(), "never-written"));
        Assert.Contains("--seed must not be negative", cli.Err);
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), "never-written")));
    }

    [Fact]
    public void InTheHubCacheAStandInIsFoundMarkedNeverHidesTheRealModelAndAPullReplacesIt()
    {
        using var cacheDir = new TempFolder();
        var cache = new HubCache(cacheDir.Path);
        var written = StandInCache.Write("gpt2", 1, cache, ScalarType.Float16);
        Assert.Equal("gpt2", written.Repo.Value);

        // `--model gpt2 --offline` finds it; it says what it is and is named by its id, not the stand-in's commit.
        var offline = new LoadOptions { Hub = new HubOptions { CacheDir = cacheDir.Path, Offline = true } };
        using (var loaded = ModelLoader.LoadWithTokenizer("gpt2", offline))
        {
            Assert.Equal(new RandomWeightsInfo("gpt2", 1, "float16"), loaded.RandomWeights);
            Assert.Equal("gpt2", loaded.DisplayName);
            Assert.Equal("gpt2", loaded.Model.Config.Name);
            Assert.NotNull(loaded.Tokenizer); // GPT-2's tokenizer ships with the workbook
        }
        // `models list` shows it as random weights.
        var output = new StringWriter();
        ModelsCommand.Build(name => name == "HF_HUB_CACHE" ? cacheDir.Path : null).Parse(new[] { "list" })
            .Invoke(new System.CommandLine.InvocationConfiguration { Output = output, Error = new StringWriter() });
        Assert.Contains("RANDOM WEIGHTS (stand-in, seed 1", output.ToString());

        // A second stand-in replaces the first (its snapshot and blobs are removed).
        var second = StandInCache.Write("gpt2", 2, cache, ScalarType.Float16);
        Assert.Equal(new RandomWeightsInfo("gpt2", 1, "float16"), second.Replaced);
        Assert.False(Directory.Exists(written.Folder));

        // `models pull` replaces the stand-in with the real model (here the loopback hub serves tiny-gpt2 as "gpt2").
        using var hub = new FakeHub();
        var repo = hub.AddFolder("gpt2", TestFiles.Fixture("tiny-gpt2"));
        using (var modelHub = new ModelHub(new HubOptions { Endpoint = hub.Endpoint, CacheDir = cacheDir.Path, MaxAttempts = 1 }))
        {
            var pulled = modelHub.Pull(HubModels.TryResolve("gpt2")!);
            Assert.Equal(new RandomWeightsInfo("gpt2", 2, "float16"), pulled.ReplacedStandIn);
            Assert.Equal(repo.Commit, pulled.Commit);
        }
        Assert.False(Directory.Exists(second.Folder));
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(cacheDir.Path, "models--gpt2", "refs", "main")).Trim());
        Assert.DoesNotContain(Directory.EnumerateFiles(Path.Combine(cacheDir.Path, "models--gpt2", "blobs")), b => new FileInfo(b).Length > 100_000_000);
        using (var real = ModelLoader.LoadWithTokenizer("gpt2", offline))
            Assert.Null(real.RandomWeights);

        // Now that the real model is cached, a stand-in may not hide it.
        var e = Assert.Throws<HubException>(() => StandInCache.Write("gpt2", 3, cache, ScalarType.Float16));
        Assert.Contains("already holds the real 'gpt2'", e.Message);
    }

    [Fact]
    public void RemovingAStandInNeverDeletesWhatAPlantedLinkPointsAtOutsideTheCache()
    {
        // A handed-over cache whose "stand-in" snapshot (marked config) links a file outside the cache: replacing the
        // stand-in drops the snapshot and its own blobs, never the link's target.
        using var cacheDir = new TempFolder();
        using var outside = new TempFolder();
        string victim = Path.Combine(outside.Path, "thesis.tex");
        File.WriteAllText(victim, "keep me");
        var cache = new HubCache(cacheDir.Path);
        var repo = RepoId.Parse("org/standin");
        const string commit = "0123456789abcdef0123456789abcdef01234567";
        string repoFolder = Path.Combine(cacheDir.Path, "models--org--standin");
        string blobs = Directory.CreateDirectory(Path.Combine(repoFolder, "blobs")).FullName;
        string snapshot = Directory.CreateDirectory(Path.Combine(repoFolder, "snapshots", commit)).FullName;
        File.WriteAllText(Path.Combine(blobs, "cfg"), "{\"" + RandomWeightsInfo.ConfigKey + "\": {\"like\": \"gpt2\", \"seed\": 1}}");
        File.WriteAllText(Path.Combine(blobs, "own"), "a blob only this stand-in uses");
        File.CreateSymbolicLink(Path.Combine(snapshot, "config.json"), "../../blobs/cfg");
        File.CreateSymbolicLink(Path.Combine(snapshot, "model.safetensors"), "../../blobs/own");
        File.CreateSymbolicLink(Path.Combine(snapshot, "tokenizer.json"), victim);
        Assert.True(StandInCache.IsStandIn(cache, repo, commit));

        StandInCache.Remove(cache, repo, commit);

        Assert.False(Directory.Exists(snapshot));
        Assert.False(File.Exists(Path.Combine(blobs, "own")));
        Assert.Equal("keep me", File.ReadAllText(victim));
    }

    [SkippableFact]
    public void AFifoNamedConfigJsonIsNotAStandInAndDoesNotHang()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo is Linux's");
        using var folder = new TempFolder();
        string config = Path.Combine(folder.Path, "config.json");
        System.Diagnostics.Process.Start("mkfifo", config)!.WaitForExit();
        var read = Task.Run(() => RandomWeightsInfo.Read(folder.Path));
        Assert.True(read.Wait(TimeSpan.FromSeconds(20)), "reading a FIFO named config.json hung");
        Assert.Null(read.Result);
    }

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("wb-standin-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
