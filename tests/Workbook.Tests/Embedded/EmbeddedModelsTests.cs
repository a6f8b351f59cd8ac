using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Embedded;
using Workbook.Tokenization;

namespace Workbook.Tests.Embedded;

/// <summary>The aliases of the models that need no download, in the library and on the command line.</summary>
public class EmbeddedModelsTests
{
    [Theory]
    [InlineData("tracr-xproportion", 14, 1)]
    [InlineData("tracr-reverse", 41, 3)]
    [InlineData("toy-ioi", 64, -1)]
    public void EveryAliasLoadsThroughTheModelLoader(string alias, int dModel, int outputs)
    {
        using var m = ModelLoader.Load(alias);
        Assert.Equal(dModel, m.Config.DModel);
        if (outputs > 0) Assert.Equal(outputs, m.Config.OutputVocab);
        Assert.Equal(m.Config, EmbeddedModels.Get(alias).Config with { Name = m.Config.Name });
        Assert.True(EmbeddedModels.TryLoad(alias.ToUpperInvariant(), null, out var again));
        again!.Dispose();
    }

    [Fact]
    public void AnUnknownAliasSuggestsTheNearestOne()
    {
        Assert.False(EmbeddedModels.TryLoad("tracr-revers", null, out _));
        Assert.Contains("'tracr-reverse'", Assert.Throws<KeyNotFoundException>(() => EmbeddedModels.Get("tracr-revers")).Message);
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
            Assert.Equal(0, doc.RootElement.GetProperty("top")[0].GetProperty("token").GetInt32());
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
