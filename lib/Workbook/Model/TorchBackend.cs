using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Workbook.Model;

/// <summary>Which native libtorch a process uses.</summary>
public enum TorchBackendKind
{
    /// <summary>TorchSharp finds its natives itself (a program's bin folder, or the packages the build restored).</summary>
    AsIs,
    /// <summary>The CPU libtorch the build restored (Linux: libtorch-cpu-linux-x64), preloaded from the NuGet cache.</summary>
    CpuFromPackages,
    /// <summary>The libtorch of a PyTorch installation with CUDA (Linux), preloaded from its <c>torch/lib</c>.</summary>
    PyTorchCuda,
    /// <summary>TorchSharp's CUDA packages (TorchSharp-cuda-windows / -linux) restored by a <c>-p:TorchBackend=cuda</c> build.</summary>
    CudaPackages,
}

/// <summary>The backend chosen for a device, with where its libraries are and what to tell the reader.</summary>
public sealed record TorchBackendPlan(TorchBackendKind Kind, string? LibraryFolder, string Description);

/// <summary>Thrown when the backend a device asks for cannot be loaded; the message says why and what to do.</summary>
public sealed class TorchBackendException(string message) : Exception(message);

/// <summary>
/// Loads the native libtorch that a notebook's <c>Device</c> parameter asks for, before TorchSharp is first used (the
/// setup cell calls <see cref="Load"/>): <c>cpu</c> the CPU libtorch the build restored; <c>cuda</c> a CUDA libtorch,
/// on Linux the one inside a PyTorch installation (<c>$LIBTORCH_DIR</c>, else <c>python3 -c "import torch"</c>'s
/// <c>torch/lib</c>, as <c>scripts/gpu</c> does), elsewhere TorchSharp-cuda-windows from a <c>-p:TorchBackend=cuda</c> build;
/// <c>auto</c> CUDA when one of those loads, else the CPU. Preloading works because the dynamic loader reuses a library
/// already loaded under the same name (TorchSharp's own advice for a Python install of PyTorch).
/// </summary>
public static class TorchBackend
{
    /// <summary>The libraries of a PyTorch installation that TorchSharp's native library links against, in dependency order.</summary>
    static readonly string[] PyTorchLibraries = { "libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so" };

    /// <summary>What the machine offers, for <see cref="Choose"/> (tests pass their own).</summary>
    public sealed record Probe(bool IsLinux, bool IsWindows, string? LibTorchDir, Func<string?> PythonTorchLib, bool CudaAlreadyUsable);

    public static Probe ThisMachine() => new(OperatingSystem.IsLinux(), OperatingSystem.IsWindows(),
        Environment.GetEnvironmentVariable("LIBTORCH_DIR"), PythonTorchLibFolder, CudaUsableWithoutLoading());

    /// <summary>
    /// The backend for <paramref name="device"/> on the machine <paramref name="probe"/> describes; a <see cref="TorchBackendException"/>
    /// naming what is missing when CUDA is asked for and none can be found (never for <c>auto</c>, which falls back to the CPU).
    /// </summary>
    public static TorchBackendPlan Choose(string device, Probe probe)
    {
        string d = (device ?? "").Trim().ToLowerInvariant();
        bool auto = d == Devices.Auto;
        bool cuda = d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal);
        if (!auto && !cuda)
        {
            if (d is not ("cpu" or "")) throw new ArgumentException($"Device '{device}' is not valid: use {Devices.Names}.");
            return Cpu(probe);
        }
        if (probe.CudaAlreadyUsable) return new(TorchBackendKind.AsIs, null, "the CUDA libtorch this process already has");
        if (probe.IsLinux)
        {
            string? folder = probe.LibTorchDir;
            string source = "$LIBTORCH_DIR";
            if (string.IsNullOrWhiteSpace(folder))
            {
                folder = probe.PythonTorchLib();
                source = "python3's torch";
            }
            string? problem = folder is null ? "no PyTorch was found (set LIBTORCH_DIR to a torch/lib folder, or install PyTorch with CUDA for python3)"
                : !Directory.Exists(folder) ? $"{source} folder '{folder}' does not exist"
                : !File.Exists(Path.Combine(folder, "libtorch_cuda.so")) ? $"{source} ('{folder}') has no libtorch_cuda.so: it is a CPU-only PyTorch"
                : null;
            if (problem is null) return new(TorchBackendKind.PyTorchCuda, folder, $"PyTorch's CUDA libtorch from {folder}");
            if (auto) return Cpu(probe) with { Description = $"the CPU ({problem})" };
            throw new TorchBackendException(
                $"Device '{device}' asks for CUDA, but no CUDA backend can be loaded: {problem}. On Linux the workbook runs on the libtorch of a PyTorch " +
                "installation with CUDA (as scripts/gpu does), or on TorchSharp-cuda-linux from a build with -p:TorchBackend=cuda. Set Device = \"cpu\" to run on the CPU.");
        }
        // Windows (and elsewhere): TorchSharp's CUDA packages, restored by `dotnet build -p:TorchBackend=cuda`.
        return new(TorchBackendKind.CudaPackages, null, probe.IsWindows ? "TorchSharp-cuda-windows" : "TorchSharp's CUDA packages");
    }

    static TorchBackendPlan Cpu(Probe probe) => probe.IsLinux
        ? new(TorchBackendKind.CpuFromPackages, null, "the CPU libtorch the build restored")
        : new(TorchBackendKind.AsIs, null, "the CPU libtorch the build restored");

    /// <summary>
    /// Loads the backend <paramref name="device"/> needs (see <see cref="TorchBackend"/>) and returns one line saying which;
    /// a <see cref="TorchBackendException"/> with what to do when CUDA was asked for and cannot be loaded.
    /// </summary>
    public static string Load(string device)
    {
        var plan = Choose(device, ThisMachine());
        NativeHeap.KeepFreedBlocks(); // a notebook kernel is its own process, like the CLI's

        switch (plan.Kind)
        {
            case TorchBackendKind.CpuFromPackages:
                PreloadCpuPackages();
                break;
            case TorchBackendKind.PyTorchCuda:
                foreach (var lib in PyTorchLibraries)
                {
                    string path = Path.Combine(plan.LibraryFolder!, lib);
                    if (File.Exists(path) && !NativeLibrary.TryLoad(path, out _))
                        throw new TorchBackendException($"Could not load {path} (a library of PyTorch's CUDA libtorch). Set Device = \"cpu\" to run on the CPU.");
                }
                PreloadTorchSharpNative();
                break;
        }
        string d = device.Trim().ToLowerInvariant();
        if (d == "cpu" || plan.Kind == TorchBackendKind.CpuFromPackages || (d == Devices.Auto && plan.Kind == TorchBackendKind.AsIs && OperatingSystem.IsLinux()))
            return $"Device '{device}': {plan.Description}.";
        try
        {
            torch.InitializeDeviceType(DeviceType.CUDA);
        }
        catch (Exception e) when (d == Devices.Auto)
        {
            return $"Device 'auto': CUDA did not initialise ({e.Message.Split('\n')[0]}), so the workbook runs on the CPU.";
        }
        catch (Exception e)
        {
            throw new TorchBackendException($"Device '{device}' asks for CUDA, but {plan.Description} did not initialise: {e.Message.Split('\n')[0]} " +
                (OperatingSystem.IsWindows() ? "Build once with `dotnet build -p:TorchBackend=cuda` (it restores TorchSharp-cuda-windows 0.107.0). " : "") +
                "Set Device = \"cpu\" to run on the CPU.");
        }
        return $"Device '{device}': {plan.Description}.";
    }

    /// <summary>Linux: libtorch-cpu-linux-x64's libraries and TorchSharp's native library, from the NuGet cache, unless TorchSharp already finds them.</summary>
    static void PreloadCpuPackages()
    {
        if (NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null, out _)) return; // a program's bin folder
        string packages = PackagesRoot();
        string? native = Directory.Exists(Path.Combine(packages, "libtorch-cpu-linux-x64"))
            ? Directory.GetDirectories(Path.Combine(packages, "libtorch-cpu-linux-x64")).OrderByDescending(d => d, StringComparer.Ordinal)
                .Select(d => Path.Combine(d, "runtimes", "linux-x64", "native")).FirstOrDefault(Directory.Exists)
            : null;
        if (native is null) return; // TorchSharp's own search (TorchSharp-cpu) takes over
        foreach (var lib in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
            NativeLibrary.TryLoad(Path.Combine(native, lib), out _);
        PreloadTorchSharpNative();
    }

    static void PreloadTorchSharpNative()
    {
        if (NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null, out _)) return;
        string path = Path.Combine(PackagesRoot(), "torchsharp", TorchSharpVersion(), "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(path) || !NativeLibrary.TryLoad(path, out _))
            throw new TorchBackendException($"Could not load TorchSharp's native library {path}; build the repository once (dotnet build Workbook.sln), which restores it.");
    }

    /// <summary>The NuGet packages folder TorchSharp.dll was loaded from (…/torchsharp/VERSION/lib/net8.0/), else $NUGET_PACKAGES or ~/.nuget/packages.</summary>
    static string PackagesRoot()
    {
        var dir = new DirectoryInfo(Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? ".");
        if (dir.Parent?.Parent?.Parent is { Name: "torchsharp" } package && package.Parent is { } root) return root.FullName;
        return Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }

    static string TorchSharpVersion()
    {
        var v = typeof(torch).Assembly.GetName().Version;
        return v is null ? "0.107.0" : $"{v.Major}.{v.Minor}.{v.Build}";
    }

    /// <summary>Whether CUDA already works in this process without loading anything (never throws; false when TorchSharp has not loaded a backend yet).</summary>
    static bool CudaUsableWithoutLoading()
    {
        try
        {
            return NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null, out _) && NativeLibrary.TryLoad("libtorch_cuda.so", out _) && torch.cuda.is_available();
        }
        catch (Exception)
        {
            return false;
        }
    }

    /// <summary><c>python3 -c "import torch"</c>'s <c>torch/lib</c> folder, or null when python3 or torch is missing.</summary>
    static string? PythonTorchLibFolder()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("python3", "-c \"import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))\"")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            });
            if (p is null) return null;
            string output = p.StandardOutput.ReadToEnd().Trim();
            if (!p.WaitForExit(60_000)) { p.Kill(); return null; }
            return p.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (Exception)
        {
            return null;
        }
    }
}
