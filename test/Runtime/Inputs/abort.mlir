// Rank 1 (a stage of its own) fails in its first kernel while rank 0 waits
// for it in an all-reduce: the job must end, not hang.
grt.executable world_size 2 alignment 64 stages 2 {
  grt.group @world sizes [2] strides [1]
  grt.program stage 0 arena 128 {
    %x = grt.input "x" offset 0 : memref<4xf32>
    %s = grt.buffer offset 64 : memref<4xf32>
    grt.all_reduce sum ins(%x : memref<4xf32>) outs(%s : memref<4xf32>) group @world
    grt.output "s" %s : memref<4xf32>
  }
  grt.program stage 1 arena 256 {
    %ids = grt.input "ids" offset 0 : memref<2xi64>
    %table = grt.parameter "table" offset 64 {init = #galvatron.init<ones>} : memref<2x2xf32>
    %rows = grt.buffer offset 128 : memref<2x2xf32>
    %flat = grt.view %rows at 0 : memref<2x2xf32> to memref<4xf32>
    %s = grt.buffer offset 192 : memref<4xf32>
    grt.kernel "embedding" ins(%table, %ids : memref<2x2xf32>, memref<2xi64>) outs(%rows : memref<2x2xf32>) {}
    grt.all_reduce sum ins(%flat : memref<4xf32>) outs(%s : memref<4xf32>) group @world
    grt.output "s" %s : memref<4xf32>
  }
}
