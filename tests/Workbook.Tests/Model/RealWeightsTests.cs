using Workbook.Checkpoints;
using Workbook.Hub;
using Workbook.Model;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>
/// The paper's real checkpoints (opt-in). Set <c>WORKBOOK_MODELS</c> to a HuggingFace hub cache folder that holds
/// them (for example <c>~/.cache/huggingface/hub</c> after <c>workbook models pull gpt2</c>, <c>attn-only-4l</c>,
/// <c>pythia-2.8b-deduped</c>); run with <c>dotnet test --filter Category=RealWeights</c>. Nothing is downloaded:
/// the cache is opened offline, and a model that is not there skips its test, saying which file is missing.
/// </summary>
[Trait("Category", "RealWeights")]
public class RealWeightsTests
{
    static LoadOptions Offline()
    {
        string? cache = Environment.GetEnvironmentVariable("WORKBOOK_MODELS");
        Skip.If(string.IsNullOrEmpty(cache), "WORKBOOK_MODELS is not set: point it at a hub cache holding the real checkpoints to run these tests.");
        return new LoadOptions { Hub = new HubOptions { CacheDir = cache!, Offline = true } };
    }

    static LoadedModel LoadOrSkip(string alias, LoadOptions options)
    {
        try
        {
            return ModelLoader.LoadWithTokenizer(alias, options);
        }
        catch (OfflineFileMissingException e)
        {
            throw new SkipException($"{alias} is not in WORKBOOK_MODELS: {e.Message}");
        }
    }

    static float[] LastLogits(HookedTransformer model, IReadOnlyList<int> ids)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return model.Forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0, -1].to(ScalarType.Float32).data<float>().ToArray();
    }

    static int[] TopK(float[] logits, int k) => logits.Select((v, i) => (v, i)).OrderByDescending(x => x.v).Take(k).Select(x => x.i).ToArray();

    /// <summary>Fraction of positions in the repeated half of [BOS, r, r] where the model predicts the next repeated token.</summary>
    static double InductionAccuracy(HookedTransformer model, ITokenizer tokenizer, int length = 30)
    {
        var rng = new Random(0);
        var random = Enumerable.Range(0, length).Select(_ => rng.Next(1000, 20000)).ToArray();
        var ids = new[] { tokenizer.Bos!.Value.Id }.Concat(random).Concat(random).Select(i => (long)i).ToArray();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var predicted = model.Forward(tensor(ids).unsqueeze(0))[0].argmax(-1);
        int hits = 0;
        for (int p = length + 1; p < 2 * length; p++)
            if (predicted[p].item<long>() == ids[p + 1]) hits++;
        return hits / (double)(length - 1);
    }

    [SkippableFact]
    public void Gpt2PredictsMaryInTheIoiSentence()
    {
        using var loaded = LoadOrSkip("gpt2", Offline());
        var tokenizer = loaded.RequireTokenizer();
        Assert.IsType<Gpt2Tokenizer>(tokenizer);
        var ids = tokenizer.EncodePrompt("When Mary and John went to the store, John gave a drink to", prependBos: false);
        Assert.Equal(new[] { 2215, 5335, 290, 1757, 1816, 284, 262, 3650, 11, 1757, 2921, 257, 4144, 284 }, ids);
        var logits = LastLogits(loaded.Model, ids);
        Assert.Equal(tokenizer.SingleToken(" Mary"), TopK(logits, 1)[0]);
    }

    [SkippableFact]
    public void AttnOnly4LLoadsWithItsDigitTokenizerAndDoesInduction()
    {
        using var loaded = LoadOrSkip("attn-only-4l", Offline());
        var c = loaded.Model.Config;
        Assert.Equal((4, 512, 8, 64, 48262), (c.NLayers, c.DModel, c.NHeads, c.DHead, c.DVocab));
        Assert.True(c.AttentionOnly);
        var tokenizer = loaded.RequireTokenizer();
        Assert.NotNull(tokenizer.Bos);
        Assert.Equal(3, tokenizer.Encode("123").Count); // digits are split one by one
        Assert.True(InductionAccuracy(loaded.Model, tokenizer) > 0.8, "a model with induction heads continues a repeated random sequence");
    }

    [SkippableFact]
    public void Pythia28BLoadsAndAnswersSensibly()
    {
        var options = Offline();
        Skip.If(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes < 16L << 30, "Pythia-2.8B in float32 needs about 12 GB of memory.");
        using var loaded = LoadOrSkip("pythia-2.8b-deduped", options);
        var c = loaded.Model.Config;
        Assert.Equal((32, 2560, 32, 80, 50304), (c.NLayers, c.DModel, c.NHeads, c.DHead, c.DVocab));
        var tokenizer = loaded.RequireTokenizer();
        Assert.Equal(0, tokenizer.Bos!.Value.Id);
        foreach (var sport in new[] { " football", " basketball", " baseball" }) tokenizer.SingleToken(sport);
        var ids = tokenizer.EncodePrompt("The capital of France is", prependBos: true);
        Assert.Contains(tokenizer.SingleToken(" Paris"), TopK(LastLogits(loaded.Model, ids), 5));
        Assert.True(InductionAccuracy(loaded.Model, tokenizer) > 0.8);
    }
}
