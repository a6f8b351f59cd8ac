using TorchSharp;
using Workbook.Experiments;
using Workbook.Model;
using Workbook.Tests.Cli;
using static TorchSharp.torch;

namespace Workbook.Tests.Model;

/// <summary>
/// Device and dtype plumbing, through the code paths a GPU run takes, checked on the CPU: device names (auto resolves to
/// the CPU without CUDA), dtype names, and the choice of the native libtorch a notebook's Device parameter loads.
/// </summary>
public class DeviceAndPrecisionTests
{
    [Fact]
    public void AutoIsTheCpuWhereThereIsNoCudaAndUnknownDevicesNameTheChoices()
    {
        Skip.If(Devices.CudaAvailable(), "this machine has CUDA");
        Assert.Equal("cpu", Devices.Resolve("auto"));
        Assert.Equal(DeviceType.CPU, Devices.Parse("auto").type);
        Assert.Equal(DeviceType.CPU, Devices.Parse(" AUTO ").type);
        Assert.Equal("cuda:1", Devices.Resolve("cuda:1")); // only auto is resolved
        var e = Assert.Throws<ArgumentException>(() => Devices.Parse("gpu"));
        Assert.Equal("Device 'gpu' is not valid: use cpu, cuda, cuda:N or auto.", e.Message);
        Assert.Throws<ArgumentException>(() => Devices.Parse("cuda:x"));
        Assert.Throws<CudaUnavailableException>(() => Devices.Parse("cuda"));
        // After a refused CUDA request the CPU still works.
        using var t = ones(3);
        Assert.Equal(3f, t.sum().item<float>());
    }

    [Theory]
    [InlineData("float32", ScalarType.Float32)]
    [InlineData("fp32", ScalarType.Float32)]
    [InlineData("BF16", ScalarType.BFloat16)]
    [InlineData("bfloat16", ScalarType.BFloat16)]
    public void DTypesParseFromTheirNames(string name, ScalarType expected)
    {
        Assert.Equal(expected, Precision.Parse(name));
        Precision.EnsureUsable(expected, CPU); // float32 and bfloat16 run on the CPU (README, "Precision")
    }

    [Fact]
    public void Float16IsRefusedOnTheCpuWithOneLine()
    {
        Assert.Equal(ScalarType.Float16, Precision.Parse("half"));
        var e = Assert.Throws<ArgumentException>(() => Precision.EnsureUsable(ScalarType.Float16, CPU));
        Assert.Equal("float16 is not supported on the CPU (libtorch computes it there more than 5x slower than float32); use bfloat16 or float32 on the CPU, float16 on CUDA.", e.Message);
        var cli = CliRunner.Run("notebook", "run", "no-such.dib", "--dtype", "float16");
        Assert.Equal("error: " + e.Message, cli.Err.Trim());
    }

    [Fact]
    public void BadFigureParametersAreRefusedBeforeAnythingLoads()
    {
        Assert.Equal("dtype 'int8' is not one of float32, bfloat16 or float16.", Assert.Throws<ArgumentException>(() => new FigureParameters(DType: "int8").Validate()).Message);
        Assert.Contains("at least 1", Assert.Throws<ArgumentException>(() => new FigureParameters(Prompts: 0).Validate()).Message);
        Assert.Contains("at least 1", Assert.Throws<ArgumentException>(() => new FigureParameters(BatchSize: -2).Validate()).Message);
        Assert.Contains("is not valid", Assert.Throws<ArgumentException>(() => new FigureParameters(Device: "tpu").Validate()).Message);
        var (device, dtype) = new FigureParameters(Device: "auto", DType: "bfloat16").Validate();
        Assert.Equal((DeviceType.CPU, ScalarType.BFloat16), (device.type, dtype));
    }

    [Fact]
    public void AFigureSetupRunsInTheDTypeItWasGiven()
    {
        bool before = FigureSetup.EmbeddedOnly;
        FigureSetup.EmbeddedOnly = true;
        try
        {
            using var setup = FigureSetup.For("ioi", FallbackSetup.ToyIoi(), new FigureParameters(DType: "bfloat16", Prompts: 2, BatchSize: 2), fallbackPartsPerOrder: 1);
            Assert.Equal(ScalarType.BFloat16, setup.Loaded.Model.DType);
            Assert.Equal(2, setup.Request(Array.Empty<Workbook.Patching.Methodology>(), Array.Empty<Workbook.Metrics.MetricKind>()).BatchSize);
            Assert.Contains("bfloat16 on cpu", setup.Describe());
        }
        finally
        {
            FigureSetup.EmbeddedOnly = before;
        }
    }

    static TorchBackend.Probe Linux(string? libTorchDir = null, string? python = null) => new(true, false, libTorchDir, () => python, CudaAlreadyUsable: false);

    [Fact]
    public void TheSetupCellChoosesALibtorchFromTheDeviceParameter()
    {
        Assert.Equal(TorchBackendKind.CpuFromPackages, TorchBackend.Choose("cpu", Linux()).Kind);
        Assert.Equal(TorchBackendKind.AsIs, TorchBackend.Choose("cpu", new(false, true, null, () => null, false)).Kind);
        Assert.Equal(TorchBackendKind.CudaPackages, TorchBackend.Choose("cuda", new(false, true, null, () => null, false)).Kind); // Windows: TorchSharp-cuda-windows
        Assert.Equal(TorchBackendKind.AsIs, TorchBackend.Choose("cuda:0", new(true, false, null, () => null, CudaAlreadyUsable: true)).Kind);

        // Linux without PyTorch: cuda is a clear error; auto falls back to the CPU and says why.
        var e = Assert.Throws<TorchBackendException>(() => TorchBackend.Choose("cuda", Linux()));
        Assert.StartsWith("Device 'cuda' asks for CUDA, but no CUDA backend can be loaded: no PyTorch was found", e.Message);
        Assert.Contains("Set Device = \"cpu\"", e.Message);
        var auto = TorchBackend.Choose("auto", Linux());
        Assert.Equal(TorchBackendKind.CpuFromPackages, auto.Kind);
        Assert.Contains("no PyTorch was found", auto.Description);

        string folder = Directory.CreateTempSubdirectory("wb-libtorch-").FullName;
        try
        {
            // A CPU-only PyTorch is named as such; one with libtorch_cuda.so is used, from LIBTORCH_DIR before python3's.
            Assert.Contains("has no libtorch_cuda.so: it is a CPU-only PyTorch", Assert.Throws<TorchBackendException>(() => TorchBackend.Choose("cuda", Linux(python: folder))).Message);
            File.WriteAllText(Path.Combine(folder, "libtorch_cuda.so"), "");
            var plan = TorchBackend.Choose("cuda", Linux(libTorchDir: folder, python: "/nowhere"));
            Assert.Equal((TorchBackendKind.PyTorchCuda, folder), (plan.Kind, plan.LibraryFolder));
            Assert.Contains("does not exist", Assert.Throws<TorchBackendException>(() => TorchBackend.Choose("cuda", Linux(libTorchDir: folder + "-missing"))).Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        Assert.Contains("is not valid", Assert.Throws<ArgumentException>(() => TorchBackend.Choose("gpu", Linux())).Message);
    }

    [Fact]
    public void LoadingTheCpuBackendInAProcessThatHasOneChangesNothing()
    {
        Assert.Equal("Device 'cpu': the CPU libtorch the build restored.", TorchBackend.Load("cpu"));
        using var t = ones(2);
        Assert.Equal(2f, t.sum().item<float>());
    }

    [Fact]
    public void EveryVerbThatRunsNotebooksRefusesAnUnknownDevice()
    {
        var r = CliRunner.Run("reproduce", "--out", Path.Combine(Path.GetTempPath(), "never-written-report"), "--device", "gpu");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: Device 'gpu' is not valid: use cpu, cuda, cuda:N or auto.", r.Err.Trim());
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), "never-written-report")));
    }
}
