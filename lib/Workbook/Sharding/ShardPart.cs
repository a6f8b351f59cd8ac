using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Workbook.Util;

namespace Workbook.Sharding;

/// <summary>What a shard covered, for a person reading the part file (the units themselves are in <see cref="ShardPart.Result"/>).</summary>
public sealed record ShardCoverage
{
    /// <summary>"units 14..26 of 40".</summary>
    public required string Units { get; init; }
    /// <summary>Methodology labels (evaluation).</summary>
    public IReadOnlyList<string>? Methodologies { get; init; }
    /// <summary>Prompt indices by dataset part, "ABBA-3: 0..49" (evaluation, EAP/HISP batches).</summary>
    public IReadOnlyList<string>? Prompts { get; init; }
    /// <summary>ACDC thresholds.</summary>
    public IReadOnlyList<double>? Thresholds { get; init; }
    /// <summary>Seeds of the dataset, the bootstrap, and subnetwork probing's masks.</summary>
    public IReadOnlyList<int>? Seeds { get; init; }
}

/// <summary>
/// One shard's part of a sharded run (<c>workbook VERB ... --shard K/N</c>), read back by <c>workbook merge</c>: which
/// command and shard it is, everything that must agree between the parts of one run (<see cref="Identity"/>: the
/// workbook's version, every option, the model's parameter checksum, the prompts' checksum, ...), what it covered,
/// and the results of its work units.
/// </summary>
public sealed record ShardPart
{
    public required string Command { get; init; }
    /// <summary>"K/N".</summary>
    public required string Shard { get; init; }
    public required int TotalUnits { get; init; }
    /// <summary>The units this part holds, [Start, End) of the run's canonical order.</summary>
    public required UnitRange Units { get; init; }
    /// <summary>Name → value of everything the parts of one run must share, in a fixed order.</summary>
    public required IReadOnlyDictionary<string, string> Identity { get; init; }
    public required ShardCoverage Covers { get; init; }
    /// <summary>The command's own results for its units (see the command's part types).</summary>
    public required JsonElement Result { get; init; }

    public Shard ParsedShard() => Sharding.Shard.Parse(Shard, "shard");
}

/// <summary>
/// The part file format: <c>{"format":"workbook-shard-part/1","sha256":HEX,"body":{...}}</c>, where HEX is the SHA-256
/// of the body's bytes as written, so that a truncated or edited part is refused instead of merged. Numbers are written
/// in their shortest round-trip form (NaN and ±Infinity as strings), so values read back bit for bit.
/// </summary>
public static class ShardPartFile
{
    public const string Format = "workbook-shard-part/1";

    /// <summary>Largest part file read (a part of a large EAP run holds one score contribution per edge and batch).</summary>
    public const long MaxBytes = 1L << 30;

    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
        WriteIndented = false,
        RespectRequiredConstructorParameters = true,
        // Readable (a '+' stays '+'); part files are data, never embedded in HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static JsonElement ToElement<T>(T value) => JsonSerializer.SerializeToElement(value, JsonOptions);

    public static T FromElement<T>(JsonElement element, string what) =>
        element.Deserialize<T>(JsonOptions) ?? throw new FormatException($"its {what} is null.");

    public static string Write(ShardPart part)
    {
        string body = JsonSerializer.Serialize(part, JsonOptions);
        return $"{{\"format\":\"{Format}\",\"sha256\":\"{Sha256(body)}\",\"body\":{body}}}\n";
    }

    public static void WriteFile(string path, ShardPart part) => AtomicFile.WriteAllText(path, Write(part));

    /// <summary>Reads a part file; any problem is a <see cref="FormatException"/> whose message names the file.</summary>
    public static ShardPart ReadFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"Part file '{path}' does not exist.", path);
        if (info.Length > MaxBytes) throw new FormatException($"'{path}' is {info.Length:N0} bytes, more than a part file may hold ({MaxBytes:N0}).");
        try
        {
            // A regular file, read within the cap (the size above was a link's or a FIFO's word, not a promise).
            return Read(Util.JsonInput.ReadText(path, maxBytes: MaxBytes));
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or KeyNotFoundException or ArgumentException)
        {
            throw new FormatException($"'{path}' is not a usable workbook part file: {e.Message}", e);
        }
    }

    public static ShardPart Read(string text)
    {
        using var doc = JsonDocument.Parse(text);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new FormatException("the top level is not an object.");
        string format = root.TryGetProperty("format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : throw new FormatException("it has no \"format\".");
        if (format != Format) throw new FormatException($"its format is '{format}', expected '{Format}'.");
        if (!root.TryGetProperty("sha256", out var sum) || sum.ValueKind != JsonValueKind.String) throw new FormatException("it has no \"sha256\".");
        if (!root.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object) throw new FormatException("it has no \"body\".");
        if (Sha256(body.GetRawText()) != sum.GetString())
            throw new FormatException("its contents do not match their recorded SHA-256 (the file was changed or damaged after the shard wrote it).");
        var part = body.Deserialize<ShardPart>(JsonOptions) ?? throw new FormatException("its body is null.");
        // Keep the result beyond this document's lifetime.
        return part with { Result = part.Result.Clone() };
    }

    static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
