using System.Globalization;
using System.Text.RegularExpressions;
using Workbook.Model;
using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Patching;

/// <summary>
/// Gaussian-noise ablation (causal tracing, Meng et al. 2022): each source takes its output on the input prompt itself
/// with noise added to the token embeddings, N(0, (<see cref="Scale"/> · σ)²) where σ is the standard deviation of the
/// batch's embeddings. The noise is drawn from <see cref="Seed"/>, so a label always gives the same values; the
/// never-patched prefix gets none. Scale 0 reproduces the clean run.
/// </summary>
public sealed partial record GaussianNoiseAblation : AblationValue
{
    /// <summary>Causal tracing's 3 standard deviations.</summary>
    public const double DefaultScale = 3.0;

    public GaussianNoiseAblation(double scale = DefaultScale, int seed = 0) : base(
        $"noise-{scale.ToString("R", CultureInfo.InvariantCulture)}-seed{seed}", $"Gaussian noise ({scale.ToString("G3", CultureInfo.InvariantCulture)}σ)",
        $"the input's own run with Gaussian noise of {scale.ToString("G3", CultureInfo.InvariantCulture)} × the embeddings' std on its embeddings (seed {seed})",
        AblationNeeds.None)
    {
        if (!double.IsFinite(scale) || scale < 0) throw new ArgumentException($"Noise scale must be a non-negative number, got {scale}.");
        if (seed < 0) throw new ArgumentException($"Noise seed must not be negative, got {seed}.");
        Scale = scale;
        Seed = seed;
    }

    /// <summary>The noise's standard deviation as a multiple of the embeddings' standard deviation.</summary>
    public double Scale { get; }
    public int Seed { get; }

    public override PatchValues Compute(AblationContext context)
    {
        var generator = new Generator((ulong)Seed, device: CPU);
        int prefix = context.NeverPatchedPrefix;
        var hooks = new HookSet().Replace(HookNames.Embed.Name, embed =>
        {
            var std = embed.to(ScalarType.Float64).std().item<double>();
            var noise = randn(embed.shape, dtype: ScalarType.Float32, generator: generator).to(embed.dtype).to(embed.device).Times(Scale * std);
            if (prefix > 0) noise[.., ..prefix] = zeros_like(noise[.., ..prefix]);
            return embed.Plus(noise);
        });
        return new PatchValues(context.RecordSources(context.InputPrompts, hooks));
    }

    [GeneratedRegex(@"^noise(?:-(?<scale>\d+(?:\.\d+)?(?:e[+-]?\d+)?))?(?:-seed(?<seed>\d+))?$")]
    private static partial Regex Spelling();

    /// <summary><c>noise</c>, <c>noise-SCALE</c>, <c>noise-seedN</c> or <c>noise-SCALE-seedN</c>; null for anything else (a seed beyond int, an infinite scale).</summary>
    static GaussianNoiseAblation? TryParse(string text)
    {
        if (Spelling().Match(text) is not { Success: true } m) return null;
        double scale = DefaultScale;
        int seed = 0;
        if (m.Groups["scale"].Success && (!double.TryParse(m.Groups["scale"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out scale) || !double.IsFinite(scale)))
            return null;
        if (m.Groups["seed"].Success && !int.TryParse(m.Groups["seed"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out seed)) return null;
        return new GaussianNoiseAblation(scale, seed);
    }

    internal static VocabularyEntry<AblationValue> Entry => new("noise[-SCALE][-seedN]",
        $"the input's own run with Gaussian noise of SCALE × the embeddings' std on its embeddings (default {DefaultScale.ToString(CultureInfo.InvariantCulture)}, causal tracing), drawn from seed N (default 0)",
        TryParse,
        new[] { new GaussianNoiseAblation(), new GaussianNoiseAblation(0), new GaussianNoiseAblation(0.5, 7), new GaussianNoiseAblation(1e-5, 123) });
}
