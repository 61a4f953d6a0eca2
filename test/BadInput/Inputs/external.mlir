// A model whose weight lies in external data at LOCATION (the tests replace
// it): 4 floats, 16 bytes.
module attributes {galvatron.model = "external"} {
  galvatron.parameter @w : tensor<4xf32> {external = #galvatron.external<location = "LOCATION">}
  func.func @main(%x: tensor<4xf32> {galvatron.name = "x"}) -> (tensor<4xf32> {galvatron.name = "y"}) {
    %0 = galvatron.layer decoder "l0" (%a = %x : tensor<4xf32>) -> tensor<4xf32> {
      %w = galvatron.param @w : tensor<4xf32>
      %y = galvatron.add %a, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
      galvatron.yield %y : tensor<4xf32>
    }
    return %0 : tensor<4xf32>
  }
}
