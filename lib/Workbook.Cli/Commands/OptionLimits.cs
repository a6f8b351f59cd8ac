using System.CommandLine;
using System.CommandLine.Parsing;

namespace Workbook.Cli.Commands;

/// <summary>
/// Ranges of the verbs' numeric options, checked when the command line is parsed, before any model or dataset is
/// loaded: an out-of-range value is one line naming the option, its range and why, never a silent multi-gigabyte
/// allocation, thousands of threads or a native backtrace. Each verb declares its options' ranges with
/// <see cref="Within(Option{int}, int, int, string)"/>; the limits themselves live here, in one place.
/// </summary>
public static class OptionLimits
{
    /// <summary>Prompts per dataset part: the paper's largest parts hold a few thousand.</summary>
    public const int MaxPrompts = 100_000;
    /// <summary>Prompts per forward pass (also bounded by memory where the model is known: see <see cref="EnsureActivationsFit"/>).</summary>
    public const int MaxBatch = 100_000;
    public const int MaxEpochs = 100_000;
    /// <summary>ACDC thresholds are {1,3,5,7,9}·10^e: the paper uses 24 exponents (-25..-2); a double reaches 10^±307.</summary>
    public const int MaxTauExponents = 100, MaxTauMagnitude = 300;
    public const int MaxTop = 1_000_000;
    public const int MaxRepeat = 100_000;
    public const int MaxSteps = 10_000_000;
    /// <summary>Circuits stacked in one forward pass (the batch grows by this factor; memory is also estimated when it is not given).</summary>
    public const int MaxCircuitsPerForward = Patching.CircuitStack.MaxCircuitsPerForward;

    /// <summary>At most one libtorch thread per processor of this machine: more only contend.</summary>
    public static int MaxThreads => Environment.ProcessorCount;

    /// <summary>Adds a parse-time check that the option's value lies in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<int> Within(this Option<int> option, int min, int max, string why = "")
    {
        option.Validators.Add(r =>
        {
            if (Value<int>(r) is int v) Check(r, option.Name, v, min, max, why);
        });
        return option;
    }

    /// <inheritdoc cref="Within(Option{int}, int, int, string)"/>
    public static Option<int?> Within(this Option<int?> option, int min, int max, string why = "")
    {
        option.Validators.Add(r =>
        {
            if (Value<int?>(r) is int v) Check(r, option.Name, v, min, max, why);
        });
        return option;
    }

    /// <summary>The parsed value; null when it did not parse (the parser reports that error itself).</summary>
    static int? Value<T>(OptionResult result)
    {
        try
        {
            return result.GetValueOrDefault<T>() is int v ? v : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    static void Check(OptionResult result, string name, int value, int min, int max, string why)
    {
        if (value < min || value > max)
            result.AddError($"{name} must be within {min:N0}..{max:N0}{(why.Length > 0 ? $" ({why})" : "")}; got {value:N0}.");
    }

    /// <summary>A range check for values known only after parsing (a list, or a bound that depends on the model).</summary>
    public static void Ensure(bool ok, string message)
    {
        if (!ok) throw new ArgumentException(message);
    }

    /// <summary>
    /// Refuses a forward pass whose activations would not fit in this machine's memory: for
    /// <paramref name="batch"/> × <paramref name="seq"/> tokens, <see cref="Model.ActivationMemory"/>'s estimate against
    /// the memory .NET sees as available. Checked before the input is even allocated.
    /// </summary>
    public static void EnsureActivationsFit(Model.TransformerConfig config, long batch, long seq, bool everyLayerKept, string what, bool patched = false)
    {
        double needed = patched ? Model.ActivationMemory.EstimatePatchedBytes(config, batch, seq) : Model.ActivationMemory.EstimateBytes(config, batch, seq, everyLayerKept);
        long available = Model.ActivationMemory.AvailableBytes();
        if (needed > available)
            throw new ArgumentException($"{what}: {batch:N0} x {seq:N0} tokens need about {needed / (1L << 30):N1} GiB of activations for {config.Name}, " +
                                        $"more than the {available / (double)(1L << 30):N1} GiB of memory free; use a smaller batch.");
    }
}
