using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Embedded;
using Workbook.Tokenization;

namespace Workbook.Tests.Embedded;

/// <summary>The aliases of the models that need no download, in the library and on the command line.</summary>
public class EmbeddedModelsTests
{
    [Theory]
    [InlineData("tracr-xproportion", 14, 1, "tracr-xproportion")]
    [InlineData("tracr-reverse", 41, 3, "tracr-reverse")]
    [InlineData("toy-ioi", 64, 164, "ioi")]
    // 2 specials + 12 layout pieces + 111 variable names + 687 nouns + the 628 nouns with a space that are not also names,
    // less one bare noun that is also a layout piece (10 of the layout pieces have no leading space: 2 + 10 + 686 = 698 bare).
    [InlineData("toy-docstring", 64, 1439, "docstring")]
    // 2 specials + 11 template pieces (the few-shot example's " Tiger", " Woods" and " golf" among them) + 3 sports + 24 + 8 + 24 name parts.
    [InlineData("toy-sports", 64, 72, "toy-sports")]
    public void EveryAliasLoadsThroughTheModelLoader(string alias, int dModel, int outputs, string task)
    {
        using var loaded = ModelLoader.LoadWithTokenizer(alias);
        Assert.Equal(ModelSourceKind.Embedded, loaded.Source.Kind);
        Assert.Equal(dModel, loaded.Model.Config.DModel);
        Assert.Equal(outputs, loaded.Model.Config.OutputVocab);
        Assert.Equal(loaded.Model.Config.DVocab, loaded.RequireTokenizer().VocabSize);
        Assert.True(EmbeddedModels.TryGet(alias.ToUpperInvariant(), out var entry));
        Assert.Equal(task, entry!.Task);
        using var again = entry.Create(new LoadOptions { DType = TorchSharp.torch.ScalarType.Float64 });
        Assert.Equal(TorchSharp.torch.ScalarType.Float64, again.embed.W_E.dtype);
    }

    [Fact]
    public void AnUnknownAliasSuggestsTheNearestOne()
    {
        Assert.False(EmbeddedModels.TryGet("tracr-revers", out _));
        Assert.Contains("'tracr-reverse'", Assert.Throws<ArgumentException>(() => ModelLoader.Load("tracr-revers")).Message);
    }

    [Fact]
    public void TheRepositoryFolderLoadsWithItsWordLevelTokenizer()
    {
        using var loaded = ModelLoader.LoadWithTokenizer(Path.Combine(Support.TestFiles.RepoRoot, ToyIoi.RepositoryFolder));
        Assert.Equal(ModelSourceKind.Folder, loaded.Source.Kind);
        Assert.IsType<WordLevelTokenizer>(loaded.Tokenizer);
        Assert.Equal(ToyIoi.Tokenizer.Vocabulary, ((WordLevelTokenizer)loaded.Tokenizer!).Vocabulary);
    }

    static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var r = Workbook.Tests.Cli.CliRunner.Run(args);
        return (r.ExitCode, r.Out, r.Err);
    }

    [Fact]
    public void RunPredictsTheIndirectObjectFromATextPrompt()
    {
        var (code, output, error) = Cli("run", "--model", "toy-ioi", "--prompt", "Then, Mary and John went to the store. John gave a drink to", "--top", "3", "--json");
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(output);
        var top = doc.RootElement.GetProperty("top")[0];
        Assert.Equal("Mary", top.GetProperty("text").GetString());
        Assert.Equal(ToyIoi.Tokenizer.SingleToken("Mary"), top.GetProperty("token").GetInt32());
    }

    [Fact]
    public void RunAndHooksAcceptTheTracrAliases()
    {
        // Reverse of "1 2 3": the last position outputs the first symbol, "1" (output id 0).
        var (code, output, error) = Cli("run", "--model", "tracr-reverse", "--prompt", "BOS 1 2 3", "--top", "1", "--json");
        Assert.True(code == 0, error);
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.Equal(0, doc.RootElement.GetProperty("top")[0].GetProperty("token").GetInt32());
            Assert.Equal("1", doc.RootElement.GetProperty("top")[0].GetProperty("text").GetString());
        }
        (code, output, error) = Cli("run", "--model", "tracr-xproportion", "--prompt", "BOS x y x w", "--json");
        Assert.True(code == 0, error);
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.Equal("frac_prevs", doc.RootElement.GetProperty("top")[0].GetProperty("text").GetString());
            Assert.Equal(0.5, doc.RootElement.GetProperty("top")[0].GetProperty("logit").GetDouble(), 4);
        }
        (code, output, error) = Cli("hooks", "--model", "tracr-xproportion", "--json");
        Assert.True(code == 0, error);
        Assert.Contains("blocks.1.attn.hook_result", output);
        Assert.DoesNotContain("ln1", output);
    }

    [Fact]
    public void PromptErrorsAreClear()
    {
        var (code, _, error) = Cli("run", "--model", "toy-ioi", "--prompt", "Then, Bob and John", "--top", "1");
        Assert.Equal(1, code);
        Assert.Contains("'Bob'", error);
        (code, _, error) = Cli("run", "--model", "toy-ioi", "--top", "1");
        Assert.Equal(1, code);
        Assert.Contains("--tokens", error);
    }
}
