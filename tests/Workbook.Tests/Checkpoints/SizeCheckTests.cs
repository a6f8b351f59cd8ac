using Workbook.Checkpoints;
using Workbook.Model;

namespace Workbook.Tests.Checkpoints;

/// <summary>The size check counts a config's weight matrices from the model's own declaration (a meta-device model).</summary>
public class SizeCheckTests
{
    /// <summary>The matrices written out by hand: W_E, W_pos (learned positions), per layer W_Q/W_K/W_V/W_O and W_in/W_out, an untied W_U.</summary>
    static double ByHand(TransformerConfig c)
    {
        double d = c.DModel, perHead = (double)c.NHeads * c.DHead;
        double values = (double)c.DVocab * d;
        if (c.Positional == PositionalEmbedding.Learned) values += (double)c.NCtx * d;
        values += c.NLayers * (4 * perHead * d + (c.HasMlp ? 2.0 * d * c.DMlp : 0));
        if (!c.TiedEmbeddings) values += d * c.OutputVocab;
        return values;
    }

    public static IEnumerable<object[]> Configs() => KnownConfigs.ByName.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(Configs))]
    public void MatrixValuesAreTheDeclaredWeightMatrices(string name)
    {
        var config = KnownConfigs.ByName[name];
        Assert.Equal(ByHand(config), SizeCheck.MatrixValues(config));
    }

    [Fact]
    public void AHugeConfigIsCountedWithoutAllocating()
    {
        // 1,024 layers 16,384 wide: about 13 trillion values, counted on the meta device in well under the time (and none of the memory) an allocation would take.
        var config = KnownConfigs.Gpt2Small with { NLayers = 1024, DModel = 16384, NHeads = 128, DHead = 128, DMlp = 65536 };
        Assert.Equal(ByHand(config), SizeCheck.MatrixValues(config));
    }
}
