//===- GalvatronInterfaces.td - Galvatron op interfaces ----*- tablegen -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_GALVATRONINTERFACES_TD
#define GALVATRON_DIALECT_GALVATRON_IR_GALVATRONINTERFACES_TD

include "mlir/IR/OpBase.td"

def Galvatron_FlopCountOpInterface : OpInterface<"FlopCountOpInterface"> {
  let cppNamespace = "::mlir::galvatron";
  let description = [{
    Ops that do matrix-multiply work report its forward FLOPs, counting a
    multiply-add as two. Ops without this interface count as zero FLOPs, the
    convention of the standard formulas (a GPT layer is
    24·b·s·h² + 4·b·s²·h, causal attention not halved).
  }];
  let methods = [
    InterfaceMethod<"Forward FLOPs of this op.", "int64_t", "getFlops">
  ];
}

#endif // GALVATRON_DIALECT_GALVATRON_IR_GALVATRONINTERFACES_TD
