using TorchSharp;
using static TorchSharp.torch;

namespace Workbook.Model;

/// <summary>The floating-point types a model can run in, by the names users give them (<c>--dtype</c>, a notebook's <c>DType</c>).</summary>
public static class Precision
{
    /// <summary>The names accepted, for messages.</summary>
    public const string Names = "float32, bfloat16 or float16";

    public static ScalarType Parse(string text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "float16" or "fp16" or "f16" or "half" => ScalarType.Float16,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"dtype '{text}' is not one of {Names}."),
    };

    /// <summary>The canonical name: float32, bfloat16, float16 (float64 for the tests' reference runs).</summary>
    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => dtype.ToString(),
    };

    /// <summary>Whether <paramref name="dtype"/> is a half-precision type (16 bits).</summary>
    public static bool IsHalf(ScalarType dtype) => dtype is ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>
    /// Checks that evaluation can run in <paramref name="dtype"/> on <paramref name="device"/>: float32 everywhere; bfloat16
    /// and float16 on CUDA; on the CPU only where libtorch computes them at a usable speed (see README, "Precision").
    /// </summary>
    public static void EnsureUsable(ScalarType dtype, Device device)
    {
        if (dtype is ScalarType.Float32 or ScalarType.Float64) return;
        if (!IsHalf(dtype)) throw new ArgumentException($"dtype {dtype} is not a floating-point type a model can run in ({Names}).");
        // libtorch has no fast float16 kernels for CPUs without AVX512-FP16: an evaluation ran more than 5x slower than in
        // float32 on this project's machine (README, "Precision"), so it is refused rather than left to run for hours.
        if (dtype == ScalarType.Float16 && device.type == DeviceType.CPU)
            throw new ArgumentException("float16 is not supported on the CPU (libtorch computes it there more than 5x slower than float32); use bfloat16 or float32 on the CPU, float16 on CUDA.");
    }
}
