using System.Text;
using Workbook.Checkpoints;
using Workbook.Tests.Support;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

public class CheckpointErrorTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("wb-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Safetensors bytes assembled by hand, independent of the workbook's writer.</summary>
    static byte[] RawSafetensors(string headerJson, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + dataBytes];
        BitConverter.GetBytes((ulong)header.Length).CopyTo(bytes, 0);
        header.CopyTo(bytes, 8);
        for (int i = 0; i < dataBytes; i++) bytes[8 + header.Length + i] = (byte)i;
        return bytes;
    }

    string WriteRaw(string headerJson, int dataBytes)
    {
        string path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".safetensors");
        File.WriteAllBytes(path, RawSafetensors(headerJson, dataBytes));
        return path;
    }

    [Fact]
    public void ReadsHandAssembledFile()
    {
        string path = WriteRaw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"format\":\"pt\"}}", 8);
        using var f = SafetensorsFile.Open(path);
        using var t = f.Read("a");
        var expected = new[] { BitConverter.ToSingle(new byte[] { 0, 1, 2, 3 }), BitConverter.ToSingle(new byte[] { 4, 5, 6, 7 }) };
        Assert.Equal(expected, t.data<float>().ToArray());
        Assert.Equal("pt", f.Metadata["format"]);
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "out of range")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "unsupported dtype")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, "overlap")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, "absurdly large")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "non-negative")]
    [InlineData("[1,2]", 0, "JSON object")]
    [InlineData("{\"a\":", 0, "not valid JSON")]
    public void RejectsMalformedHeaders(string header, int dataBytes, string expected)
    {
        string path = WriteRaw(header, dataBytes);
        var e = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void RejectsHeaderLengthPastEndOfFile()
    {
        string path = Path.Combine(_dir, "short.safetensors");
        var bytes = RawSafetensors("{}", 0);
        BitConverter.GetBytes(1000UL).CopyTo(bytes, 0);
        File.WriteAllBytes(path, bytes);
        Assert.Contains("past the end", Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path)).Message);
    }

    [Fact]
    public void ChunkedReadEqualsWholeRead()
    {
        using var f = SafetensorsFile.Open(TestFiles.Fixture("tiny-gpt2/model.safetensors"));
        using var whole = f.Read("transformer.h.0.mlp.c_fc.weight");
        int saved = SafetensorsFile.CopyChunkBytes;
        try
        {
            SafetensorsFile.CopyChunkBytes = 1000; // not a multiple of the row size
            using var chunked = f.Read("transformer.h.0.mlp.c_fc.weight");
            Assert.Equal(0.0, TensorAssert.MaxAbsDiff(whole, chunked));
        }
        finally
        {
            SafetensorsFile.CopyChunkBytes = saved;
        }
    }

    /// <summary>Copies the tiny-gpt2 fixture with its tensors transformed, to break it in one way.</summary>
    string CopyGpt2(Func<string, Tensor, Tensor?> transform, Func<string, string>? editConfig = null)
    {
        string dir = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string config = File.ReadAllText(TestFiles.Fixture("tiny-gpt2/config.json"));
        File.WriteAllText(Path.Combine(dir, "config.json"), editConfig?.Invoke(config) ?? config);
        using var f = SafetensorsFile.Open(TestFiles.Fixture("tiny-gpt2/model.safetensors"));
        using var scope = NewDisposeScope();
        var tensors = new List<(string, Tensor)>();
        foreach (var name in f.Tensors.Keys)
        {
            var t = transform(name, f.Read(name));
            if (t is not null) tensors.Add((name, t));
        }
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        return dir;
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        string dir = CopyGpt2((n, t) => n.EndsWith("h.1.ln_2.bias") ? null : t);
        var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(dir));
        Assert.Contains("missing tensor", e.Message);
        Assert.Contains("h.1.ln_2.bias", e.Message);
    }

    [Fact]
    public void MisshapenTensorIsNamed()
    {
        string dir = CopyGpt2((n, t) => n.EndsWith("h.2.mlp.c_fc.weight") ? t[.., ..100] : t);
        var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(dir));
        Assert.Contains("h.2.mlp.c_fc.weight", e.Message);
        Assert.Contains("[64, 100]", e.Message);
    }

    [Fact]
    public void ExtraTensorIsNamed()
    {
        string dir = CopyGpt2((n, t) => t, c => c.Replace("\"n_layer\": 3", "\"n_layer\": 2"));
        var e = Assert.Throws<CheckpointException>(() => ModelLoader.Load(dir));
        Assert.Contains("layer 2", e.Message);
    }

    [Fact]
    public void IntegerWeightsAreRejected()
    {
        string dir = CopyGpt2((n, t) => n.EndsWith("ln_f.weight") ? t.to(ScalarType.Int32) : t);
        Assert.Contains("ln_f.weight", Assert.Throws<CheckpointException>(() => ModelLoader.Load(dir)).Message);
    }

    [Fact]
    public void HalfPrecisionCheckpointConvertsOnLoad()
    {
        // Both loads go through float16 weights, so they agree exactly; they stay within float16 rounding of the float32 model.
        string dir = CopyGpt2((n, t) => t.to(ScalarType.Float16));
        var fixture = ScenarioFixture.Load("tiny-gpt2-scenarios.json");
        using var half = ModelLoader.Load(dir);
        Assert.Equal(ScalarType.Float32, half.embed.W_E.dtype);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        TensorAssert.Close(fixture["unpatched"].Logits, half.Forward(TensorAssert.Tokens(fixture.Clean)), 0.05, "float16 weights");
    }

    [Fact]
    public void HubStyleGpt2NamesWithMaskBuffersLoadTheSame()
    {
        // The original hub checkpoint has no "transformer." prefix and carries attn.bias / attn.masked_bias buffers.
        string hub = Path.Combine(_dir, "hub");
        Directory.CreateDirectory(hub);
        File.Copy(TestFiles.Fixture("tiny-gpt2/config.json"), Path.Combine(hub, "config.json"));
        using (var f = SafetensorsFile.Open(TestFiles.Fixture("tiny-gpt2/model.safetensors")))
        using (NewDisposeScope())
        {
            var tensors = f.Tensors.Keys.Select(n => (n.Replace("transformer.", ""), f.Read(n))).ToList();
            for (int l = 0; l < 3; l++)
            {
                tensors.Add(($"h.{l}.attn.bias", ones(1, 1, 64, 64).tril()));
                tensors.Add(($"h.{l}.attn.masked_bias", tensor(-1e4f)));
            }
            SafetensorsWriter.Write(Path.Combine(hub, "model.safetensors"), tensors);
        }
        var fixture = ScenarioFixture.Load("tiny-gpt2-scenarios.json");
        using var m = ModelLoader.Load(hub);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        TensorAssert.Close(fixture["unpatched"].Logits, m.Forward(TensorAssert.Tokens(fixture.Clean)), 1e-4);
    }
}
