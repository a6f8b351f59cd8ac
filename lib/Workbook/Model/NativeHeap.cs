using System.Runtime.InteropServices;

namespace Workbook.Model;

/// <summary>What <see cref="NativeHeap.KeepFreedBlocks"/> did, in words a log line can show.</summary>
public sealed record NativeHeapSetting(bool Applied, string Description);

/// <summary>
/// The C heap that libtorch's CPU tensors come from. glibc hands every block above 32 MB out as fresh pages from the
/// kernel and returns it on free, so a forward pass that makes a large tensor each time pays for mapping and zeroing
/// it every time: GPT-2 small's logits for 50 x 16 tokens are 160 MB, and that cost 0.5 s of a 3.7 s forward on one
/// core (a third of the CPU time of the whole pass, measured with `bench patching`; PyTorch in a Python process often
/// escapes it by luck, reusing a large block freed earlier). <see cref="KeepFreedBlocks"/> asks glibc to serve large
/// blocks from its heap and keep freed memory for the next tensor, so a repeated forward reuses pages it already has.
/// The price: the process's resident memory stays near its peak instead of shrinking between passes. Numbers are
/// unaffected (only where memory comes from changes). Set <c>WORKBOOK_NATIVE_HEAP=system</c> to keep glibc's defaults.
/// </summary>
public static class NativeHeap
{
    /// <summary>The environment variable that turns the setting off (value <c>system</c>).</summary>
    public const string EnvironmentVariable = "WORKBOOK_NATIVE_HEAP";

    // glibc's mallopt parameters (malloc.h).
    const int M_TRIM_THRESHOLD = -1;
    const int M_MMAP_MAX = -4;

    static readonly object Gate = new();
    static NativeHeapSetting? _applied;

    /// <summary>
    /// Applies the setting once per process (later calls return the first result): on Linux with glibc, no block is
    /// served by its own mapping and freed memory is not trimmed back to the kernel. Elsewhere (Windows, macOS, musl)
    /// nothing changes and the result says why.
    /// </summary>
    public static NativeHeapSetting KeepFreedBlocks()
    {
        lock (Gate)
        {
            return _applied ??= Apply(Environment.GetEnvironmentVariable(EnvironmentVariable));
        }
    }

    internal static NativeHeapSetting Apply(string? choice)
    {
        if (string.Equals(choice?.Trim(), "system", StringComparison.OrdinalIgnoreCase))
            return new(false, $"C heap: the system's defaults ({EnvironmentVariable}=system)");
        if (!string.IsNullOrWhiteSpace(choice) && !string.Equals(choice.Trim(), "reuse", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{EnvironmentVariable} must be 'reuse' (the default) or 'system'; got '{choice}'.");
        if (!OperatingSystem.IsLinux())
            return new(false, "C heap: the system's defaults (the setting is for glibc on Linux)");
        try
        {
            // Both return 1 on success. Order matters little: neither moves memory that is already in use.
            bool ok = mallopt(M_MMAP_MAX, 0) == 1 & mallopt(M_TRIM_THRESHOLD, int.MaxValue) == 1;
            return ok
                ? new(true, "C heap: freed blocks kept for reuse (glibc M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB)")
                : new(false, "C heap: the system's defaults (glibc refused the setting)");
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return new(false, "C heap: the system's defaults (no glibc mallopt here)");
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int mallopt(int param, int value);
}
