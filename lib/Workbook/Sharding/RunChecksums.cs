using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Workbook.Model;
using Workbook.Tasks;
using static TorchSharp.torch;

namespace Workbook.Sharding;

/// <summary>Checksums that tell whether two shards ran on the same model, prompts and files, and the workbook's own version.</summary>
public static class RunChecksums
{
    /// <summary>The workbook library's version with the commit it was built from ("1.0.0+&lt;commit&gt;").</summary>
    public static string WorkbookVersion { get; } =
        typeof(RunChecksums).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>
    /// SHA-256 over every parameter and buffer as the model holds it (name, dtype, shape, then its bytes): the same
    /// for the same weights in the same dtype, wherever they were loaded from, and different after any change.
    /// </summary>
    public static string Parameters(HookedTransformer model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var _ = no_grad();
        var tensors = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(model.named_buffers().Select(b => (b.name, b.buffer)));
        foreach (var (name, tensor) in tensors)
        {
            using var scope = NewDisposeScope();
            hash.AppendData(Encoding.UTF8.GetBytes($"{name}|{tensor.dtype}|{string.Join(",", tensor.shape)}\n"));
            if (tensor.NumberOfElements > 0) hash.AppendData(tensor.detach().cpu().contiguous().bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>SHA-256 of the model's configuration as JSON (every field: shapes, activation, LayerNorm, positions, ...).</summary>
    public static string Config(TransformerConfig config) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(config, ShardPartFile.JsonOptions)));

    /// <summary>SHA-256 over every part's name, prompts, answers, word positions and never-patched prefix: what the model is fed and scored on.</summary>
    public static string Prompts(IReadOnlyList<TokenizedDataset> parts)
    {
        var text = new StringBuilder();
        static string Ids(IReadOnlyList<int[]>? rows) => rows is null ? "-" : string.Join(";", rows.Select(r => string.Join(",", r)));
        static string Values(IReadOnlyList<double[][]>? rows) => rows is null ? "-"
            : string.Join(";", rows.Select(r => string.Join("|", r.Select(v => string.Join(",", v.Select(x => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))))));
        foreach (var p in parts)
        {
            text.Append(p.Name).Append('\n').Append(Ids(p.Clean)).Append('\n').Append(Ids(p.Corrupt)).Append('\n')
                .Append(Ids(p.AnswerIds)).Append('\n').Append(Ids(p.WrongAnswerIds)).Append('\n')
                .Append(Values(p.AnswerValues)).Append('\n').Append(Values(p.WrongAnswerValues)).Append('\n')
                .Append(p.TargetsAreTokenIds).Append('|').Append(p.SharedPrefix).Append('|')
                .AppendJoin(",", p.Positions.Entries.Select(e => $"{e.Key}={e.Value}")).Append('\n');
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>SHA-256 of a file's bytes.</summary>
    public static string File(string path)
    {
        using var stream = System.IO.File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
